"""The install PKI, proven with real TLS handshakes on loopback (contract §1)."""

from __future__ import annotations

import shutil
import socket
import ssl
import stat
import threading
import warnings
from pathlib import Path

import pytest
from cryptography import x509

from aislehub.gateway import certs
from aislehub.gateway.certs import PkiPaths


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    directory = tmp_path_factory.mktemp("pki")
    return certs.write_install_pki(directory, ["localhost", "hub.example.net"], ["127.0.0.1"])


def _sdk_client_context(ca_pem: str) -> ssl.SSLContext:
    """What the SDK builds (``mqtt_transport.py`` L319-352): TLS 1.2 only, hostname checked."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLSv1_2)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.load_verify_locations(cadata=ca_pem)
    return context


def _handshake(
    pki: PkiPaths,
    client: ssl.SSLContext,
    server_hostname: str,
    server_errors: list[Exception] | None = None,
) -> str:
    """One real TLS handshake on 127.0.0.1; returns the version the client negotiated.

    The server runs in a thread with a blocking socket so that OpenSSL flushes its alert
    before the socket closes (asyncio aborts the transport instead). Its errors, if any,
    land in ``server_errors``.
    """
    server_context = certs.server_ssl_context(pki)
    server_errors = [] if server_errors is None else server_errors
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError) as exc:
                server_errors.append(exc)

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=5) as raw,
                client.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                return str(tls.version())
        finally:
            thread.join(5)


@pytest.mark.parametrize("name", ["localhost", "hub.example.net", "127.0.0.1"])
def test_sdk_style_client_accepts_dns_and_ip_sans(pki: PkiPaths, name: str) -> None:
    client = _sdk_client_context(pki.ca_cert.read_text())
    assert _handshake(pki, client, name) == "TLSv1.2"


def test_modern_client_gets_tls13(pki: PkiPaths) -> None:
    client = ssl.create_default_context(cadata=pki.ca_cert.read_text())
    client.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
    assert _handshake(pki, client, "localhost") == "TLSv1.3"


def test_unknown_name_refused(pki: PkiPaths) -> None:
    client = _sdk_client_context(pki.ca_cert.read_text())
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(pki, client, "other.example.net")


def test_tls11_client_refused_by_server(pki: PkiPaths) -> None:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.set_ciphers("DEFAULT:@SECLEVEL=0")  # let our own OpenSSL offer TLS 1.1 at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.minimum_version = ssl.TLSVersion.TLSv1_1
        client.maximum_version = ssl.TLSVersion.TLSv1_1
    server_errors: list[Exception] = []
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        _handshake(pki, client, "localhost", server_errors)
    # The client did offer TLS 1.1 and the server refused it (not a local refusal).
    assert "UNSUPPORTED_PROTOCOL" in str(server_errors[0])


def test_files_and_modes(pki: PkiPaths) -> None:
    assert certs.PkiPaths.in_directory(pki.ca_cert.parent) == pki
    assert stat.S_IMODE(pki.ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(pki.server_key.stat().st_mode) == 0o600
    assert not list(pki.ca_cert.parent.glob("*.tmp"))


def test_server_certificate_extensions(pki: PkiPaths) -> None:
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "hub.example.net"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    leaf.verify_directly_issued_by(ca)


def test_rewrite_keeps_the_ca(pki: PkiPaths, tmp_path: Path) -> None:
    for name in ("ca.pem", "ca.key"):
        shutil.copy(pki.ca_cert.parent / name, tmp_path / name)
    again = certs.write_install_pki(tmp_path, ["gw.local"], ["::1"])
    assert again.ca_cert.read_bytes() == pki.ca_cert.read_bytes()
    leaf = x509.load_pem_x509_certificate(again.server_cert.read_bytes())
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()))
    assert leaf.subject.rfc4514_string() == "CN=gw.local,O=aislehub"


def test_server_cert_needs_a_name(pki: PkiPaths) -> None:
    with pytest.raises(ValueError, match="hostname or IP"):
        certs.create_server_cert(pki.ca_cert.read_bytes(), pki.ca_key.read_bytes(), [], [])
