"""Certificates for app-only (client assertion) sign-in, and base64url."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["b64url", "make_certificate", "thumbprints", "write_certificate_file"]


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_certificate(common_name: str = "syncd test app") -> tuple[bytes, bytes, str]:
    """A self-signed certificate for app-only auth: (cert PEM, key PEM, SHA-1 thumbprint hex)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem, cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303


def write_certificate_file(folder: Path) -> tuple[Path, bytes, str]:
    """A fresh app certificate: (key + certificate PEM file in ``folder``, certificate PEM for
    :meth:`IdentityProvider.register_app`, SHA-1 thumbprint hex)."""
    cert_pem, key_pem, thumbprint = make_certificate()
    path = folder / "app-cert.pem"
    path.write_bytes(key_pem + cert_pem)
    path.chmod(0o600)
    return path, cert_pem, thumbprint


def thumbprints(certificate: x509.Certificate) -> set[str]:
    """The ``x5t`` and ``x5t#S256`` values (base64url, unpadded) that name ``certificate``."""
    sha1 = certificate.fingerprint(hashes.SHA1())  # noqa: S303 - what the x5t header carries
    return {b64url(sha1), b64url(certificate.fingerprint(hashes.SHA256()))}
