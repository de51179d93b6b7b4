"""`kokoa control …` as operators run it: real subprocesses, a real HTTPS server, real files."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trustme

KOKOA = str(Path(sys.executable).with_name("kokoa"))
PASSWORD = "a long enough passphrase for the admin"
API = "/api/v1"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Settings as an operator sets them: env variables only (YAML is tested below)."""
    return {
        **os.environ,
        "KOKOA_SECRET_KEY": "cli-test-secret-key-that-is-long-enough-0123456789",
        "KOKOA_DATA_DIR": str(tmp_path / "data"),
        "KOKOA_PASSWORD_HASH__MEMORY_COST": "1024",
        "KOKOA_PASSWORD_HASH__TIME_COST": "1",
        "KOKOA_PASSWORD_HASH__PARALLELISM": "1",
        "KOKOA_LOG_LEVEL": "warning",
    }


def kokoa(
    env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KOKOA, "control", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@contextmanager
def serving(env: dict[str, str], tmp_path: Path) -> Iterator[httpx.Client]:
    """`kokoa control serve` over HTTPS (certificate from a CA only this test trusts)."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    served_env = env | {
        "KOKOA_PUBLIC_URL": url,
        "KOKOA_TLS_CERT_FILE": str(tmp_path / "cert.pem"),
        "KOKOA_TLS_KEY_FILE": str(tmp_path / "key.pem"),
        "KOKOA_LOG_LEVEL": "info",
    }
    process = subprocess.Popen(
        [KOKOA, "control", "serve", "--port", str(port)],
        env=served_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    verify = ssl.create_default_context()
    ca.configure_trust(verify)
    try:
        with httpx.Client(base_url=url, verify=verify, timeout=10) as client:
            _wait_until_serving(client, process)
            client.headers["Origin"] = url
            yield client
    except BaseException:
        process.kill()
        process.communicate(timeout=20)
        raise
    # A clean stop: uvicorn finishes its shutdown, then re-raises SIGTERM on itself (so the
    # exit status tells a supervisor which signal ended it).
    process.terminate()
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == -signal.SIGTERM, stderr
    assert "Application shutdown complete" in stderr


def _wait_until_serving(client: httpx.Client, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while process.poll() is None:
        try:
            client.get("/api/openapi.json")
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.1)
    raise AssertionError(f"serve exited {process.returncode}: {process.communicate()[1]}")


def log_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post(f"{API}/auth/login", json={"email": email, "password": password})


def test_migrate_reports_the_revision(env: dict[str, str], tmp_path: Path) -> None:
    out = ok(kokoa(env, "migrate"))
    assert out.startswith("database at revision ")
    assert (tmp_path / "data" / "control.db").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert ok(kokoa(env, "migrate")) == out  # idempotent


def test_create_admin_then_serve_over_https_and_log_in(env: dict[str, str], tmp_path: Path) -> None:
    out = ok(
        kokoa(
            env,
            "create-admin",
            "--password-stdin",
            "--email",
            "Root@Example.org",
            "--org",
            "Ops",
            stdin=PASSWORD,
        )
    )
    assert "created root@example.org, owner of organisation " in out
    again = kokoa(
        env, "create-admin", "--password-stdin", "--email", "root@example.org", stdin=PASSWORD
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    weak = kokoa(
        env, "create-admin", "--password-stdin", "--email", "b@example.org", stdin="password"
    )
    assert weak.returncode == 1
    assert "Traceback" not in weak.stderr

    with serving(env, tmp_path) as client:
        assert log_in(client, "root@example.org", "wrong password!").status_code == 401
        response = log_in(client, "root@example.org")
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        orgs = client.get(f"{API}/orgs").json()
        assert [(o["name"], o["role"]) for o in orgs] == [("Ops", "owner")]
        audit = client.get(f"{API}/orgs/{orgs[0]['id']}/audit").json()
        assert {"org.create", "member.add"} <= {entry["action"] for entry in audit["items"]}
        mine = client.get(f"{API}/me/audit").json()
        assert {"user.create", "auth.login.succeeded", "auth.login.failed"} <= {
            entry["action"] for entry in mine["items"]
        }


def test_backup_while_serving_then_restore(env: dict[str, str], tmp_path: Path) -> None:
    ok(
        kokoa(
            env, "create-admin", "--password-stdin", "--email", "root@example.org", stdin=PASSWORD
        )
    )
    backup = tmp_path / "backup.db"
    with serving(env, tmp_path) as client:
        response = log_in(client, "root@example.org")
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        org = client.get(f"{API}/orgs").json()[0]["id"]
        body = {"name": "kept", "hostname": "kept.example.org", "origin": "http://127.0.0.1:9"}
        assert client.post(f"{API}/orgs/{org}/services", json=body).status_code == 201
        # Online: the server holds the database open (WAL) while the backup runs.
        assert "backed up to" in ok(kokoa(env, "backup", str(backup)))
        body = {"name": "lost", "hostname": "lost.example.org", "origin": "http://127.0.0.1:9"}
        assert client.post(f"{API}/orgs/{org}/services", json=body).status_code == 201
    assert backup.stat().st_mode & 0o777 == 0o600

    out = ok(kokoa(env, "restore", str(backup)))
    kept = out.split("the previous database is in ")[1].strip()
    assert Path(kept).is_file()
    with closing_db(Path(kept)) as old:
        assert old.execute("SELECT count(*) FROM services").fetchone()[0] == 2

    with serving(env, tmp_path) as client:
        response = log_in(client, "root@example.org")
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        org = client.get(f"{API}/orgs").json()[0]["id"]
        items = client.get(f"{API}/orgs/{org}/services").json()["items"]
        assert [s["hostname"] for s in items] == ["kept.example.org"]


@contextmanager
def closing_db(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path)
    try:
        yield db
    finally:
        db.close()


def test_restore_refuses_a_file_that_is_not_a_kokoa_database(
    env: dict[str, str], tmp_path: Path
) -> None:
    ok(kokoa(env, "migrate"))
    stray = tmp_path / "stray.db"
    with closing_db(stray) as db:
        db.execute("CREATE TABLE t (x)")
    for bad in (stray, tmp_path / "missing.db"):
        result = kokoa(env, "restore", str(bad))
        assert result.returncode == 1
        assert str(bad) in result.stderr
        assert "Traceback" not in result.stderr
    ok(kokoa(env, "migrate"))  # the live database is untouched


def test_backup_on_postgresql_points_at_pg_dump(env: dict[str, str], tmp_path: Path) -> None:
    pg = env | {"KOKOA_DATABASE_URL": "postgresql+asyncpg://kokoa@127.0.0.1:9/kokoa"}
    result = kokoa(pg, "backup", str(tmp_path / "x.db"))
    assert result.returncode == 1
    assert "pg_dump -Fc" in result.stderr


def test_bad_settings_name_the_field_and_the_reason(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "kokoa.yaml"
    config.write_text("listen_port: 99999\nsesion_idle_timeout: 5\n")
    result = kokoa(env, "migrate", "--config", str(config))
    assert result.returncode == 2
    assert "listen_port" in result.stderr
    assert "less than or equal to 65535" in result.stderr
    assert "sesion_idle_timeout" in result.stderr

    insecure = {k: v for k, v in env.items() if k != "KOKOA_SECRET_KEY"}
    result = kokoa(insecure, "serve")
    assert result.returncode == 2
    assert "secret_key is missing" in result.stderr

    half_tls = env | {"KOKOA_TLS_CERT_FILE": str(tmp_path / "cert.pem")}
    result = kokoa(half_tls, "migrate")
    assert result.returncode == 2
    assert "tls_cert_file and tls_key_file go together" in result.stderr
