"""Certificates for the TLS Docker API (2376, `tlsverify`): a CA (generated, or the
user's), a server certificate for the managers and a client certificate for admins.

The managers read the CA certificate, their certificate and its key from SSM
(`/swarmstack/<cluster>/tls/...`; the key as a SecureString under the cluster's KMS
key). The CA's key never reaches a node. The admins' bundle is a secret stack output.

Server certificate names: the load balancer's DNS name (how admins reach the API),
`localhost` and `127.0.0.1` (a manager's own tools and health checks). Manager IP
addresses are not included: they change whenever a manager is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from components.common.cert_expiry import RENEW_HOURS, pem_expiry
from components.common.namespace import tls_prefix

CA_HOURS = 10 * 365 * 24
LEAF_HOURS = 2 * 365 * 24


def server_names(lb_dns: str | None) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses of the managers' certificate. Pure."""
    return ([lb_dns] if lb_dns else []) + ["localhost"], ["127.0.0.1"]


@dataclass(frozen=True)
class DockerTlsArgs:
    """What the certificates need."""

    cluster: str
    """The cluster's name (subjects and parameter paths)."""
    lb_dns_name: pulumi.Input[str] | None
    """The load balancer's DNS name, a name of the server certificate; None without a load balancer."""
    ca_cert_pem: str | None
    """The user's CA certificate; None to generate a CA."""
    ca_key_pem: pulumi.Input[str] | None
    """The user's CA private key (a secret) when `ca_cert_pem` is given."""
    key_id: pulumi.Input[str]
    """The cluster's KMS key, for the SecureString parameter of the server key."""
    tags: dict[str, str]
    """Tags for the parameters."""


class DockerTls(pulumi.ComponentResource):
    """CA, server and client certificates; the managers' part stored in SSM."""

    client_bundle: pulumi.Output[dict[str, str]]
    """`ca.pem`, `cert.pem`, `key.pem` for `docker --tlsverify` (secret)."""
    parameter_names: list[str]
    expiries: dict[str, pulumi.Input[str]]
    """`server` and `ca`: when each certificate ends (RFC 3339), for the expiry warnings."""

    def __init__(self, name: str, args: DockerTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:DockerTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.ca_cert_pem is not None:
            if args.ca_key_pem is None:
                raise ValueError("a provided CA certificate needs its private key")
            ca_cert: pulumi.Input[str] = args.ca_cert_pem
            ca_key: pulumi.Input[str] = pulumi.Output.secret(args.ca_key_pem)
            ca_end: pulumi.Input[str] = pem_expiry(args.ca_cert_pem)
        else:
            key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
            cert = tls.SelfSignedCert(
                f"{name}-ca", private_key_pem=key.private_key_pem, is_ca_certificate=True,
                validity_period_hours=CA_HOURS,
                subject={"common_name": f"swarmstack {args.cluster} CA", "organization": "swarmstack"},
                allowed_uses=["cert_signing", "crl_signing", "digital_signature"], opts=child)
            ca_cert, ca_key, ca_end = cert.cert_pem, key.private_key_pem, cert.validity_end_time
        server_key, server_cert, server_end = self._leaf(name, "server", args, ca_cert, ca_key, ["server_auth"])
        client_key, client_cert, _ = self._leaf(name, "client", args, ca_cert, ca_key, ["client_auth"])
        self.expiries = {"server": server_end, "ca": ca_end}
        prefix = tls_prefix(args.cluster)
        stored = {"ca-cert": (ca_cert, "String"), "server-cert": (server_cert, "String"),
                  "server-key": (server_key, "SecureString")}
        self.parameter_names = []
        for leaf, (value, kind) in stored.items():
            aws.ssm.Parameter(f"{name}-{leaf}", name=f"{prefix}/{leaf}", type=kind, value=value,
                              key_id=args.key_id if kind == "SecureString" else None,
                              description=f"swarmstack {args.cluster}: Docker API {leaf}",
                              tags={**args.tags, "Name": f"{prefix}/{leaf}"}, opts=child)
            self.parameter_names.append(f"{prefix}/{leaf}")
        self.client_bundle = pulumi.Output.secret(pulumi.Output.all(ca_cert, client_cert, client_key).apply(
            lambda v: {"ca.pem": v[0], "cert.pem": v[1], "key.pem": v[2]}))
        self.register_outputs({"parameters": self.parameter_names})

    def _leaf(self, name: str, leaf: str, args: DockerTlsArgs, ca_cert: pulumi.Input[str],
              ca_key: pulumi.Input[str], uses: list[str]
              ) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
        child = pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey(f"{name}-{leaf}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        names: dict[str, Any] = {}
        if leaf == "server":
            dns = pulumi.Output.from_input(args.lb_dns_name) if args.lb_dns_name is not None else None
            names = {"dns_names": dns.apply(lambda d: server_names(d)[0]) if dns else server_names(None)[0],
                     "ip_addresses": server_names(None)[1]}
        subject = {"common_name": f"swarmstack {args.cluster} {'manager' if leaf == 'server' else 'admin'}",
                   "organization": "swarmstack"}
        request = tls.CertRequest(f"{name}-{leaf}-csr", opts=child,
                                  **{"private_key_pem": key.private_key_pem, "subject": subject, **names})
        cert = tls.LocallySignedCert(
            f"{name}-{leaf}", cert_request_pem=request.cert_request_pem, ca_private_key_pem=ca_key,
            ca_cert_pem=ca_cert, validity_period_hours=LEAF_HOURS, early_renewal_hours=RENEW_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", *uses], opts=child)
        return key.private_key_pem, cert.cert_pem, cert.validity_end_time
