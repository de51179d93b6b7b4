"""`kokoa pki`: init-ca, issue, show — files, modes, refusals and exit codes."""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID
from typer.testing import CliRunner

from common import pki
from common.pki_cli import app


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    code, _, err = run("init-ca", directory, "--days", "30")
    assert code == 0, err
    return directory


def test_init_ca_writes_a_ca(ca_dir: Path) -> None:
    assert mode(ca_dir / "ca.key") == 0o600
    assert mode(ca_dir) == 0o700
    key = pki.load_private_key(ca_dir / "ca.key")
    [cert] = pki.load_certificates(ca_dir / "ca.crt")
    assert cert.public_key() == key.public_key()
    _, leaf = pki.issue_certificate(key, cert, role="agent", name="a")
    assert pki.verify_peer(leaf, [], [cert], role="agent").name == "a"


def test_init_ca_refuses_to_overwrite(ca_dir: Path) -> None:
    before = (ca_dir / "ca.key").read_bytes(), (ca_dir / "ca.crt").read_bytes()
    code, out, err = run("init-ca", ca_dir)
    assert code == 1
    assert "ca.crt already exists; not overwriting it" in err
    assert out == ""
    assert ((ca_dir / "ca.key").read_bytes(), (ca_dir / "ca.crt").read_bytes()) == before


def test_init_ca_refuses_when_only_the_key_exists(tmp_path: Path) -> None:
    (tmp_path / "ca.key").write_text("precious")
    code, _, err = run("init-ca", tmp_path)
    assert code == 1 and "ca.key already exists" in err
    assert (tmp_path / "ca.key").read_text() == "precious"
    assert not (tmp_path / "ca.crt").exists()


def test_issue_agent_next_to_the_ca(ca_dir: Path) -> None:
    code, out, err = run("issue", ca_dir, "--role", "agent", "--name", "web-1", "--org", "acme")
    assert code == 0, err
    assert "identity: agent web-1 of org acme" in out
    assert mode(ca_dir / "web-1.key") == 0o600
    [cert] = pki.load_certificates(ca_dir / "web-1.crt")
    assert cert.public_key() == pki.load_private_key(ca_dir / "web-1.key").public_key()
    roots = pki.load_certificates(ca_dir / "ca.crt")
    identity = pki.verify_peer(cert, [], roots, role="agent")
    assert (identity.name, identity.org) == ("web-1", "acme")


def test_issue_ingress_to_out_prefix(ca_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "node" / "in-1"
    out.parent.mkdir()
    code, _, err = run(
        "issue", ca_dir, "--role", "ingress", "--name", "in-1", "--dns", "localhost",
        "--dns", "in-1.test", "--ip", "127.0.0.1", "--days", "2", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    [cert] = pki.load_certificates(out.with_suffix(".crt"))
    roots = pki.load_certificates(ca_dir / "ca.crt")
    for name in ("localhost", "in-1.test", "127.0.0.1"):
        assert pki.verify_peer(cert, [], roots, role="ingress", server_name=name).name == "in-1"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 2
    assert mode(out.with_suffix(".key")) == 0o600
    assert not (ca_dir / "in-1.crt").exists()


def test_issue_refuses_to_overwrite_unless_forced(ca_dir: Path) -> None:
    assert run("issue", ca_dir, "--role", "agent", "--name", "a")[0] == 0
    before = (ca_dir / "a.key").read_bytes()
    code, _, err = run("issue", ca_dir, "--role", "agent", "--name", "a")
    assert code == 1 and "use --force" in err
    assert (ca_dir / "a.key").read_bytes() == before
    assert run("issue", ca_dir, "--role", "agent", "--name", "a", "--force")[0] == 0
    assert (ca_dir / "a.key").read_bytes() != before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "agent", "--name", "a b"], "name 'a b' must be"),
        (["--role", "ingress", "--name", "n"], "needs at least one DNS name or IP"),
        (["--role", "agent", "--name", "a", "--ip", "127.0.0.1"], "carries no DNS names"),
        (["--role", "ingress", "--name", "n", "--ip", "300.1.1.1"], "'300.1.1.1' is not an IP"),
    ],
)
def test_issue_bad_input_fails_and_writes_nothing(
    ca_dir: Path, args: list[str], message: str
) -> None:
    before = sorted(ca_dir.iterdir())
    code, _, err = run("issue", ca_dir, *args)
    assert code == 1
    assert message in err
    assert sorted(ca_dir.iterdir()) == before


def test_issue_usage_errors_exit_2(ca_dir: Path) -> None:
    assert run("issue", ca_dir, "--role", "edge", "--name", "a")[0] == 2
    assert run("issue", ca_dir, "--role", "agent")[0] == 2
    assert run("issue", ca_dir, "--role", "agent", "--name", "a", "--days", "0")[0] == 2


def test_issue_without_a_ca(tmp_path: Path) -> None:
    code, _, err = run("issue", tmp_path, "--role", "agent", "--name", "a")
    assert code == 1
    assert "cannot read" in err and "ca.key" in err


def test_show(ca_dir: Path) -> None:
    run("issue", ca_dir, "--role", "ingress", "--name", "in-1", "--ip", "127.0.0.1")
    [cert] = pki.load_certificates(ca_dir / "in-1.crt")
    code, out, _ = run("show", ca_dir / "in-1.crt")
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["identity"].strip() == "ingress in-1"
    assert lines["serial"].strip() == f"{cert.serial_number:x}"
    assert lines["SANs"].strip() == "URI:urn:kokoa:ingress:in-1, IP:127.0.0.1"
    assert lines["usage"].strip() == "serverAuth"
    assert lines["status"].strip().startswith("valid (")
    assert lines["sha256"].strip() == pki.fingerprint(cert)


def test_show_chain_and_ca(ca_dir: Path, tmp_path: Path) -> None:
    [ca] = pki.load_certificates(ca_dir / "ca.crt")
    run("issue", ca_dir, "--role", "agent", "--name", "a")
    [leaf] = pki.load_certificates(ca_dir / "a.crt")
    pki.write_certificate(tmp_path / "chain.pem", leaf, ca)
    code, out, _ = run("show", tmp_path / "chain.pem")
    assert code == 0
    first, second = out.split("\n\n")
    assert "identity:     agent a" in first and "clientAuth" in first
    assert "identity:     none (certificate has no subject alternative name)" in second
    assert "CA (pathlen 0)" in second


def test_show_errors(tmp_path: Path) -> None:
    code, _, err = run("show", tmp_path / "missing.pem")
    assert code == 1 and "cannot read" in err
    (tmp_path / "junk.pem").write_text("junk")
    code, _, err = run("show", tmp_path / "junk.pem")
    assert code == 1 and "no valid PEM certificate" in err


def test_show_unparseable_certificate(tmp_path: Path) -> None:
    ca_key, ca_cert = pki.create_ca()
    garbage = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03junk")
    now = datetime.now(UTC)
    bad = (
        x509.CertificateBuilder()
        .subject_name(ca_cert.subject)
        .issuer_name(ca_cert.subject)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(garbage, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki.write_certificate(tmp_path / "bad.pem", ca_cert, bad)
    code, out, err = run("show", tmp_path / "bad.pem")
    assert code == 1
    assert "certificate 2 cannot be parsed" in err
    assert out == ""


def test_through_the_kokoa_console_script(tmp_path: Path) -> None:
    """The entry point is wired: `kokoa pki init-ca` in a real process."""
    kokoa = Path(sys.executable).with_name("kokoa")
    done = subprocess.run(
        [kokoa, "pki", "init-ca", tmp_path / "ca"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "sha256 fingerprint:" in done.stdout
    again = subprocess.run(
        [kokoa, "pki", "init-ca", tmp_path / "ca"], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
