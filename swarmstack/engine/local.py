"""Models of the providers that compute locally: pulumi-tls and pulumi-random.

They compute for real (keys, certificates signed by the right CA, random bytes),
so that what the program wires together can be checked: a server certificate
really is signed by the CA the clients trust.
"""

from __future__ import annotations

import datetime
import secrets
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmstack.engine.mocks import EngineError, UnsupportedByEngine


def _name(subject: dict[str, Any] | None) -> x509.Name:
    subject = subject or {}
    attrs = []
    if subject.get("commonName"):
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, subject["commonName"]))
    if subject.get("organization"):
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
    return x509.Name(attrs)


def _load_key(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _public_pem(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


_USAGES = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
}


def _validity(cert: x509.Certificate, inputs: dict[str, Any]) -> dict[str, Any]:
    """The provider's validity outputs: start and end as RFC 3339 in UTC, and whether the
    certificate is inside its early-renewal window (the next update would re-issue it)."""
    renew = datetime.timedelta(hours=int(inputs.get("earlyRenewalHours", 0)))
    now = datetime.datetime.now(datetime.UTC)
    return {"validityStartTime": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validityEndTime": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "readyForRenewal": now >= cert.not_valid_after_utc - renew}


class TlsBackend:
    """pulumi-tls: PrivateKey, SelfSignedCert, CertRequest, LocallySignedCert."""

    def __init__(self) -> None:
        self._keys: dict[str, Any] = {}

    def create(self, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        handler = {
            "tls:index/privateKey:PrivateKey": self._private_key,
            "tls:index/selfSignedCert:SelfSignedCert": self._self_signed,
            "tls:index/certRequest:CertRequest": self._cert_request,
            "tls:index/locallySignedCert:LocallySignedCert": self._locally_signed,
        }.get(type_)
        if handler is None:
            raise UnsupportedByEngine(f"{type_} '{name}': the engine has no model of this tls resource")
        return handler(name, inputs)

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        raise UnsupportedByEngine(f"{token}: the engine has no model of this tls invoke")

    def _private_key(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        algorithm = inputs.get("algorithm", "RSA")
        if algorithm == "ECDSA":
            curve = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(),
                     "P521": ec.SECP521R1()}.get(inputs.get("ecdsaCurve", "P224"))
            if curve is None:
                raise EngineError(f"tls PrivateKey '{name}': unknown ecdsaCurve {inputs.get('ecdsaCurve')}")
            key: Any = ec.generate_private_key(curve)
        elif algorithm == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits", 2048)))
        elif algorithm == "ED25519":
            from cryptography.hazmat.primitives.asymmetric import ed25519
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise EngineError(f"tls PrivateKey '{name}': algorithm must be RSA, ECDSA or ED25519, got {algorithm}")
        private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
        public = key.public_key()
        public_pem = public.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        openssh = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        return f"{name}-key", {**inputs, "privateKeyPem": private_pem, "privateKeyPemPkcs8": private_pem,
                               "publicKeyPem": public_pem, "publicKeyOpenssh": openssh + "\n"}

    def _builder(self, inputs: dict[str, Any], subject: x509.Name, issuer: x509.Name,
                 public: Any) -> x509.CertificateBuilder:
        hours = int(inputs.get("validityPeriodHours", 24))
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(hours=hours)))
        usages = inputs.get("allowedUses", [])
        if inputs.get("isCaCertificate"):
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False,
                decipher_only=False), critical=True)
        ekus = [_USAGES[u] for u in usages if u in _USAGES]
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in inputs.get("dnsNames", [])]
        import ipaddress
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in inputs.get("ipAddresses", [])]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder

    def _self_signed(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        key = _load_key(inputs["privateKeyPem"])
        subject = _name(inputs.get("subject"))
        cert = self._builder(inputs, subject, subject, key.public_key()).sign(key, hashes.SHA256())
        return f"{name}-cert", {**inputs, "certPem": _pem(cert), **_validity(cert, inputs)}

    def _cert_request(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        key = _load_key(inputs["privateKeyPem"])
        builder = x509.CertificateSigningRequestBuilder().subject_name(_name(inputs.get("subject")))
        csr = builder.sign(key, hashes.SHA256())
        pem = csr.public_bytes(serialization.Encoding.PEM).decode()
        self._keys[pem] = inputs
        return f"{name}-csr", {**inputs, "certRequestPem": pem}

    def _locally_signed(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
        request = self._keys.get(inputs["certRequestPem"], {})
        ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
        ca_key = _load_key(inputs["caPrivateKeyPem"])
        if _public_pem(ca_cert.public_key()) != _public_pem(ca_key.public_key()):
            raise EngineError(f"tls LocallySignedCert '{name}': caPrivateKeyPem is not the key of caCertPem")
        merged = {**inputs, "dnsNames": request.get("dnsNames", []), "ipAddresses": request.get("ipAddresses", [])}
        cert = self._builder(merged, csr.subject, ca_cert.subject, csr.public_key()).sign(ca_key, hashes.SHA256())
        return f"{name}-cert", {**inputs, "certPem": _pem(cert), **_validity(cert, inputs)}


class RandomBackend:
    """pulumi-random: RandomId, RandomString, RandomPassword."""

    def create(self, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if type_ == "random:index/randomId:RandomId":
            raw = secrets.token_bytes(int(inputs.get("byteLength", 8)))
            return raw.hex(), {**inputs, "hex": raw.hex(), "dec": str(int.from_bytes(raw, "big")),
                               "b64Url": raw.hex()}
        if type_ in ("random:index/randomString:RandomString", "random:index/randomPassword:RandomPassword"):
            length = int(inputs.get("length", 16))
            alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
            if inputs.get("upper", True):
                alphabet += "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            value = "".join(secrets.choice(alphabet) for _ in range(length))
            return name, {**inputs, "result": value}
        raise UnsupportedByEngine(f"{type_} '{name}': the engine has no model of this random resource")

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        raise UnsupportedByEngine(f"{token}: the engine has no model of this random invoke")
