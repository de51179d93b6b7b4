"""HTTPS listeners: the certificate chosen by SNI (exact, wildcard, default), atomic reloads,
TLS versions and ALPN, proxying over TLS, and the plain listener that redirects to HTTPS."""

from __future__ import annotations

import asyncio
import json
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from ingress.public import SniCertificates
from ingress.public.tls import Issued, Loaded, load_issued
from tests.ingress.public_fakes import Front, read_response, running_front


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_pair(ca: trustme.CA, directory: Path, name: str, *hosts: str) -> tuple[Path, Path]:
    cert = ca.issue_cert(*hosts)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert.private_key_pem.write_to_path(key_path)
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return cert_path, key_path


@pytest.fixture
def pairs(ca: trustme.CA, tmp_path: Path) -> list[tuple[Path, Path]]:
    return [
        write_pair(ca, tmp_path, "default", "default.test"),
        write_pair(ca, tmp_path, "app", "app.test", "api.test"),
        write_pair(ca, tmp_path, "wild", "*.wild.test"),
    ]


@pytest.fixture
def certificates(pairs: list[tuple[Path, Path]]) -> SniCertificates:
    return SniCertificates(pairs)


@pytest.fixture
async def front(certificates: SniCertificates) -> AsyncIterator[Front]:
    async with running_front(tls=certificates) as f:
        yield f


def client_context(ca: trustme.CA, **versions: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["http/1.1"])
    for name, version in versions.items():
        setattr(context, name, version)
    return context


async def handshake(
    front: Front, context: ssl.SSLContext, server_name: str | None
) -> tuple[list[str], str | None]:
    """The DNS names of the certificate the server presented, and the ALPN protocol."""
    if server_name is None:
        context.check_hostname = False
    _, writer = await asyncio.open_connection(
        "127.0.0.1", front.port, ssl=context, server_hostname=server_name or ""
    )
    try:
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True)
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return san.value.get_values_for_type(x509.DNSName), sslobj.selected_alpn_protocol()
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("server_name", "names"),
    [
        ("app.test", ["app.test", "api.test"]),
        ("API.TEST", ["app.test", "api.test"]),
        ("x.wild.test", ["*.wild.test"]),
        ("default.test", ["default.test"]),
    ],
)
async def test_sni_picks_the_certificate(
    front: Front, ca: trustme.CA, server_name: str, names: list[str]
) -> None:
    got, alpn = await handshake(front, client_context(ca), server_name)
    assert (got, alpn) == (names, "http/1.1")


@pytest.mark.parametrize("server_name", [None, "nobody.test", "a.b.wild.test", "wild.test"])
async def test_unknown_or_missing_sni_gets_the_first_certificate(
    front: Front, ca: trustme.CA, server_name: str | None
) -> None:
    context = client_context(ca)
    context.check_hostname = False
    got, _ = await handshake(front, context, server_name)
    assert got == ["default.test"]


async def test_update_swaps_certificates_for_new_handshakes(
    front: Front, ca: trustme.CA, certificates: SniCertificates, tmp_path: Path
) -> None:
    new_ca = trustme.CA()
    certificates.update([write_pair(new_ca, tmp_path, "new", "app.test", "fresh.test")])
    assert certificates.names() == ["app.test", "fresh.test"]
    got, _ = await handshake(front, client_context(new_ca), "fresh.test")
    assert got == ["app.test", "fresh.test"]
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(front, client_context(ca), "app.test")  # the old chain is gone


async def test_bad_update_keeps_the_current_certificates(
    front: Front, ca: trustme.CA, certificates: SniCertificates, tmp_path: Path
) -> None:
    cert, _ = write_pair(ca, tmp_path, "x", "x.test")
    _, other_key = write_pair(ca, tmp_path, "y", "y.test")
    with pytest.raises(ssl.SSLError):
        certificates.update([(cert, other_key)])  # the key does not match
    with pytest.raises(FileNotFoundError):
        certificates.update([(tmp_path / "missing.crt", tmp_path / "missing.key")])
    got, _ = await handshake(front, client_context(ca), "app.test")
    assert got == ["app.test", "api.test"]


def test_a_certificate_without_dns_names_is_refused(ca: trustme.CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("127.0.0.1")  # an IP address SAN only
    cert.private_key_pem.write_to_path(tmp_path / "ip.key")
    (tmp_path / "ip.crt").write_bytes(cert.cert_chain_pems[0].bytes())
    with pytest.raises(ValueError, match="no DNS names"):
        SniCertificates([(tmp_path / "ip.crt", tmp_path / "ip.key")])


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_tls_1_2_and_1_3_are_served(
    front: Front, ca: trustme.CA, version: ssl.TLSVersion
) -> None:
    context = client_context(ca, minimum_version=version, maximum_version=version)
    assert (await handshake(front, context, "app.test"))[0] == ["app.test", "api.test"]


async def test_tls_1_1_is_refused_by_the_server(
    front: Front, ca: trustme.CA, pairs: list[tuple[Path, Path]]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = client_context(ca)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
        permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
        permissive.minimum_version = ssl.TLSVersion.TLSv1_1
    permissive.load_cert_chain(*pairs[1])
    # Control: this client does complete a TLS 1.1 handshake with a server that allows it.
    control = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=permissive)
    async with control:
        port = control.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="app.test"
        )
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
        writer.close()
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await handshake(front, context, "app.test")


async def test_https_request_is_proxied_with_scheme_https(front: Front, ca: trustme.CA) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", front.port, ssl=client_context(ca), server_hostname="app.test"
    )
    try:
        for _ in range(2):  # keep-alive over TLS
            writer.write(b"GET /headers HTTP/1.1\r\nHost: app.test\r\n\r\n")
            status, _, body = await read_response(reader)
            seen = json.loads(body)
            assert status == 200
            assert seen["scheme"] == "https"
            assert ["x-forwarded-proto", "https"] in seen["headers"]
    finally:
        writer.close()


# ---- redirect to HTTPS ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "target", "location"),
    [
        (8443, "/a/b?c=d", "https://app.test:8443/a/b?c=d"),
        (443, "/", "https://app.test/"),
        (443, "http://app.test:80/x", "https://app.test/x"),
    ],
)
async def test_plain_listener_redirects_to_https(port: int, target: str, location: str) -> None:
    async with running_front(redirect_to_https_port=port) as front:
        reader, writer = await front.open()
        try:
            for method in (b"GET", b"POST"):
                writer.write(
                    b"%s %s HTTP/1.1\r\nHost: App.Test:80\r\nContent-Length: 0\r\n\r\n"
                    % (method, target.encode())
                )
                status, headers, body = await read_response(reader)
                assert (status, headers["location"], body) == (308, location, b"")
        finally:
            writer.close()
        assert front.agent.heads == []
        assert front.sample("kokoa_ingress_rejected_total", reason="redirected") == 2


# ---- certificates from the control plane's snapshot (control mode) ---------------------------


def issued(ca: trustme.CA, label: str, *hosts: str) -> Issued:
    cert = ca.issue_cert(*hosts)
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems).decode()
    return Issued(label, chain, cert.private_key_pem.bytes().decode())


async def test_the_snapshots_certificates_serve_beside_the_files(
    front: Front,
    ca: trustme.CA,
    certificates: SniCertificates,
    pairs: list[tuple[Path, Path]],
    tmp_path: Path,
) -> None:
    """The snapshot's win for a name both cover; an exact name still beats a wildcard whoever
    gives it; the file's first stays the default; `install` leaves the file's alone and
    `update` the snapshot's."""
    other = trustme.CA()
    certificates.install(
        load_issued(
            [
                issued(other, "c0", "app.test", "new.test"),  # app.test: the file's too
                issued(other, "c1", "*.wild.test"),  # the same wildcard as the file's
                issued(other, "c2", "*.sub.test"),  # above an exact name of the file's
            ]
        )
    )
    certificates.update([*pairs, write_pair(ca, tmp_path, "exact", "exact.sub.test")])
    for name, names, trust in [
        ("app.test", ["app.test", "new.test"], other),
        ("new.test", ["app.test", "new.test"], other),
        ("api.test", ["app.test", "api.test"], ca),  # only the file covers it
        ("x.wild.test", ["*.wild.test"], other),
        ("default.test", ["default.test"], ca),
        ("exact.sub.test", ["exact.sub.test"], ca),
        ("else.sub.test", ["*.sub.test"], other),
    ]:
        got, _ = await handshake(front, client_context(trust), name)
        assert got == names, name
    context = client_context(ca)
    context.check_hostname = False
    assert (await handshake(front, context, None))[0] == ["default.test"]
    certificates.update([])  # the file lists none any more (control mode may)
    assert (await handshake(front, client_context(other), "app.test"))[0] == [
        "app.test",
        "new.test",
    ]
    context = client_context(other)
    context.check_hostname = False
    assert (await handshake(front, context, None))[0] == ["app.test", "new.test"]
    certificates.install(load_issued([]))
    with pytest.raises(OSError):  # nothing to serve: an alert, or the connection reset
        await handshake(front, client_context(other), "app.test")


def test_a_bad_issued_certificate_is_named(ca: trustme.CA) -> None:
    good = issued(ca, "certificates.0 (a)", "a.test")
    wrong_key = issued(ca, "certificates.1 (b)", "b.test")
    mismatched = Issued("certificates.1 (b)", wrong_key.chain, good.key)
    with pytest.raises(ssl.SSLError, match=r"certificates.1 \(b\): the chain and key do not"):
        load_issued([good, mismatched])
    with pytest.raises(ValueError, match=r"certificates.2 \(c\): not a PEM certificate"):
        load_issued([good, Issued("certificates.2 (c)", "garbage", good.key)])
    garbled = Issued("certificates.0 (d)", good.chain, "-----BEGIN PRIVATE KEY-----\nAAAA\n")
    with pytest.raises(ssl.SSLError, match=r"certificates.0 \(d\)"):
        load_issued([garbled])


def test_a_change_loads_only_the_certificates_that_changed(ca: trustme.CA) -> None:
    """With `reuse`, a certificate with the same chain and key keeps its context (moved or
    relabelled too): replacing one of N loads one. A bad one still refuses the whole list."""
    first = [issued(ca, f"certificates.{i} (c{i})", f"h{i}.test") for i in range(6)]
    loaded = load_issued(first)
    assert len({id(context) for context, _ in loaded.entries}) == 6

    def fresh(new: Loaded, old: Loaded) -> list[int]:
        """Where `new` holds a context that `old` did not: those were loaded."""
        before = {id(context) for context, _ in old.entries}
        return [i for i, (context, _) in enumerate(new.entries) if id(context) not in before]

    renewed = issued(ca, "certificates.2 (c2)", "h2.test", "www.h2.test")
    second = load_issued([*first[:2], renewed, *first[3:]], reuse=loaded)
    assert fresh(second, loaded) == [2]
    assert second.entries[2][1] == ("h2.test", "www.h2.test")
    assert [names for _, names in second.entries[3:]] == [(f"h{i}.test",) for i in range(3, 6)]

    moved = Issued("certificates.0 (c5)", first[5].chain, first[5].key)
    third = load_issued([moved, renewed, first[0]], reuse=second)
    assert fresh(third, second) == []
    assert third.entries[0] is second.entries[5]

    wrong = Issued("certificates.1 (x)", first[1].chain, first[0].key)
    with pytest.raises(ssl.SSLError, match=r"certificates.1 \(x\): the chain and key do not"):
        load_issued([first[0], wrong], reuse=third)
