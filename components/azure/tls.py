"""Certificates for the TLS Docker API (2376, `tlsverify`): a CA, the managers' server
certificate and an admin client certificate, all made with pulumi-tls."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

from components.common.cert_expiry import RENEW_HOURS, pem_expiry

VALIDITY_HOURS = 24 * 365


@dataclass(frozen=True)
class DockerTlsArgs:
    """Who the certificates are for and which CA signs them."""

    cluster: str
    """Cluster name, in the certificates' subjects."""
    ip_addresses: list[pulumi.Input[str]]
    """Addresses clients dial (the load balancer's); always with 127.0.0.1."""
    dns_names: list[pulumi.Input[str]]
    """Names clients dial (the load balancer's DNS name); always with localhost."""
    ca_cert_pem: str | None
    """A provided CA certificate, or None to generate one."""
    ca_key_pem: pulumi.Input[str] | None
    """The provided CA's private key (a secret), with `ca_cert_pem`."""


class DockerTls(pulumi.ComponentResource):
    """The Docker API's PKI. Private keys are secrets; none leaves the stack except
    the client bundle, exported as a secret for the admins."""

    ca_cert_pem: pulumi.Output[str]
    server_cert_pem: pulumi.Output[str]
    server_key_pem: pulumi.Output[str]
    client_bundle: pulumi.Output[dict[str, str]]
    """`{"ca.pem", "cert.pem", "key.pem"}`, as `docker --tlsverify` reads them; secret."""
    expiries: dict[str, pulumi.Input[str]]
    """`server` and `ca`: when each certificate ends (RFC 3339), for the expiry alerts."""

    def __init__(self, name: str, args: DockerTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:DockerTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.ca_cert_pem is not None:
            if args.ca_key_pem is None:
                raise pulumi.RunError("dockerApi.ca is provided, but swarmstack:dockerApiCaKey is not set")
            ca_cert: pulumi.Input[str] = args.ca_cert_pem
            ca_key: pulumi.Input[str] = pulumi.Output.secret(args.ca_key_pem)
            ca_end: pulumi.Input[str] = pem_expiry(args.ca_cert_pem)
        else:
            ca_private = tls.PrivateKey(f"{name}-ca", algorithm="ECDSA", ecdsa_curve="P384", opts=child)
            ca = tls.SelfSignedCert(
                f"{name}-ca", private_key_pem=ca_private.private_key_pem, is_ca_certificate=True,
                validity_period_hours=VALIDITY_HOURS * 5, allowed_uses=["cert_signing", "crl_signing"],
                subject=tls.SelfSignedCertSubjectArgs(common_name=f"{args.cluster} docker api ca",
                                                      organization="swarmstack"), opts=child)
            ca_cert, ca_key, ca_end = ca.cert_pem, ca_private.private_key_pem, ca.validity_end_time
        server_key = tls.PrivateKey(f"{name}-server", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        server = self._signed(name, "server", server_key, ca_cert, ca_key, ["server_auth"],
                              [*args.dns_names, "localhost"], [*args.ip_addresses, "127.0.0.1"])
        client_key = tls.PrivateKey(f"{name}-client", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        client = self._signed(name, "client", client_key, ca_cert, ca_key, ["client_auth"], [], [])
        self.ca_cert_pem = pulumi.Output.from_input(ca_cert)
        self.server_cert_pem = server.cert_pem
        self.server_key_pem = pulumi.Output.secret(server_key.private_key_pem)
        self.expiries = {"server": server.validity_end_time, "ca": ca_end}
        self.client_bundle = pulumi.Output.secret(pulumi.Output.all(ca_cert, client.cert_pem,
                                                                    client_key.private_key_pem).apply(
            lambda parts: {"ca.pem": parts[0], "cert.pem": parts[1], "key.pem": parts[2]}))
        self.register_outputs({"caCertPem": self.ca_cert_pem})

    def _signed(self, name: str, role: str, key: tls.PrivateKey, ca_cert: pulumi.Input[str],
                ca_key: pulumi.Input[str], uses: list[str], dns: list[pulumi.Input[str]],
                ips: list[pulumi.Input[str]]) -> tls.LocallySignedCert:
        child = pulumi.ResourceOptions(parent=self)
        request = tls.CertRequest(f"{name}-{role}", private_key_pem=key.private_key_pem, dns_names=dns,
                                  ip_addresses=ips, subject=tls.CertRequestSubjectArgs(
                                      common_name=f"{name} docker api {role}", organization="swarmstack"),
                                  opts=child)
        return tls.LocallySignedCert(
            f"{name}-{role}", cert_request_pem=request.cert_request_pem, ca_cert_pem=ca_cert,
            ca_private_key_pem=ca_key, validity_period_hours=VALIDITY_HOURS, early_renewal_hours=RENEW_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", *uses], opts=child)
