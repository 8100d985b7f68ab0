"""Certificates for the TLS Docker API test: a CA, a server pair, client bundles.

Made as the AWS components make them for `dockerApi.ca: generated`: an EC P-256 CA,
a server certificate for the managers' addresses, and an admin client certificate
(clientAuth) signed by the same CA.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pair:
    """A PEM certificate and its PEM private key."""

    cert: str
    key: str


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _builder(subject: str, issuer: str, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))


def ca(common: str) -> tuple[Pair, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(common, common, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Pair(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)), key


def issue(ca_pair: Pair, ca_key: ec.EllipticCurvePrivateKey, common: str, *, server: bool,
          addresses: list[str] = ()) -> Pair:  # type: ignore[assignment]
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.load_pem_x509_certificate(ca_pair.cert.encode()).subject.rfc4514_string().removeprefix("CN=")
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (_builder(common, issuer, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if addresses:
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Pair(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))


@dataclass(frozen=True)
class Bundle:
    """Everything the TLS test needs: the cluster's CA and pairs, and a stranger's client pair."""

    ca: Pair
    server: Pair
    admin: Pair
    stranger_ca: Pair
    stranger: Pair

    def ssm_values(self) -> dict[str, str]:
        """The SSM parameters under /swarmstack/<cluster>/tls/ as the AWS components store them."""
        return {"ca-cert": self.ca.cert, "server-cert": self.server.cert, "server-key": self.server.key}


def make_bundle(addresses: list[str]) -> Bundle:
    ca_pair, ca_key = ca("swarmstack test CA")
    other_pair, other_key = ca("some other CA")
    return Bundle(
        ca=ca_pair,
        server=issue(ca_pair, ca_key, "swarmstack managers", server=True, addresses=addresses),
        admin=issue(ca_pair, ca_key, "admin", server=False),
        stranger_ca=other_pair,
        stranger=issue(other_pair, other_key, "admin", server=False),
    )
