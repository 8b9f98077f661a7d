"""The per-install PKI: one private CA, one server certificate, one TLS context.

Devices trust the CA (``server_verification_cert=`` or ``SSL_CERT_FILE``, contract §1) and
dial with ``check_hostname=True``, so the server certificate carries every name and address
devices use as DNS and IP SANs. Keys are RSA 2048: Azure IoT Hub serves RSA chains, the SDK
was seen negotiating ECDHE-RSA, and RSA is the one key type every embedded TLS stack has.

The extensions are the ones OpenSSL 3 checks under ``X509_STRICT`` (the default from Python
3.13 on): a critical basicConstraints, keyUsage, SKI on the CA, and AKI on the leaf.

Resource handling: ``write_install_pki`` keeps an existing CA (devices already trust it)
and writes keys 0600 through a temporary file, so a crash never leaves half a key.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
# Apple platforms refuse TLS server certificates valid for more than 825 days, even from
# a private CA (support.apple.com/HT210176); the rest of the world does not care.
SERVER_DAYS = 825
# Devices often boot with a clock that lags; a certificate valid from "now" would be
# refused by them until NTP catches up.
BACKDATE = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class PkiPaths:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_directory(cls, directory: Path | str) -> PkiPaths:
        """The file names :func:`write_install_pki` uses under ``directory``."""
        root = Path(directory)
        return cls(root / "ca.pem", root / "ca.key", root / "server.pem", root / "server.key")


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aislehub"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey, days: int, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


def _usage(*, signing: bool, certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=signing,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certs,
        crl_sign=certs,
        encipher_only=False,
        decipher_only=False,
    )


def create_ca(common_name: str, now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A self-signed CA that may sign leaf certificates only; returns (cert PEM, key PEM)."""
    now = now or dt.datetime.now(dt.UTC)
    key = _new_key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key, CA_DAYS, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signing=False, certs=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def _san(hostnames: list[str], ips: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return x509.SubjectAlternativeName(names)


def create_server_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    hostnames: list[str],
    ips: list[str],
    now: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A TLS server certificate for every hostname (DNS SAN) and IP (IP SAN)."""
    if not hostnames and not ips:
        raise ValueError("a server certificate needs at least one hostname or IP")
    now = now or dt.datetime.now(dt.UTC)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise ValueError("the CA key is not an RSA key")
    key = _new_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        _builder(_name((hostnames or ips)[0]), ca_cert.subject, key, SERVER_DAYS, now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signing=True, certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(hostnames, ips), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file created with ``mode``, then rename over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is ignored when the file already existed
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_install_pki(directory: Path | str, hostnames: list[str], ips: list[str]) -> PkiPaths:
    """Write ca.pem, ca.key, server.pem, server.key under ``directory``.

    An existing CA pair is kept, since devices already trust it; the server certificate is
    issued afresh for the names given.
    """
    Path(directory).mkdir(parents=True, exist_ok=True)
    paths = PkiPaths.in_directory(directory)
    if not (paths.ca_cert.exists() and paths.ca_key.exists()):
        # A unique name, so that clients trusting two installs' CAs never confuse them.
        ca_cert, ca_key = create_ca(f"aislehub install CA {secrets.token_hex(4)}")
        _write(paths.ca_key, ca_key, 0o600)
        _write(paths.ca_cert, ca_cert, 0o644)
    cert, key = create_server_cert(
        paths.ca_cert.read_bytes(), paths.ca_key.read_bytes(), hostnames, ips
    )
    _write(paths.server_key, key, 0o600)
    _write(paths.server_cert, cert, 0o644)
    return paths


def server_ssl_context(paths: PkiPaths) -> ssl.SSLContext:
    """A server context with TLS 1.2 as the floor.

    The SDK speaks TLS 1.2 only (``PROTOCOL_TLSv1_2``, contract §1); TLS 1.3 stays on for
    every other client. TLS 1.0/1.1 are refused (RFC 8996).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.server_cert, paths.server_key)
    return context
