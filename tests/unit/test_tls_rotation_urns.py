"""The runbook's certificate rotation (docs/operations.md), checked against the program.

The URNs the runbook tells an operator to `pulumi up --replace` are the ones the program
registers, and what a replacement of the CA's key reaches is what the runbook (and the
integration test, tests/integration/test_tls_rotation.py) says: the CA certificate, the
re-signed leaves and the parameters holding them, never the leaves' own keys; on AWS no
launch template or group (running managers take the files from SSM), on Azure the
managers' scale set (the certificates are in its custom data).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from shipped import shipped_graph

from swarmstack.engine.graph import Graph

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "operations.md"
KEY = "tls:index/privateKey:PrivateKey"
CERT = "tls:index/selfSignedCert:SelfSignedCert"
SIGNED = "tls:index/locallySignedCert:LocallySignedCert"


@pytest.fixture(scope="module", params=["prod-aws", "prod-azure"])
def graph(request: pytest.FixtureRequest) -> Graph:
    return shipped_graph(request.param)  # built once per test run (shipped.py)


def dependents(graph: Graph, urn: str) -> set[str]:
    """Every resource an input of which comes, directly or through others, from `urn`."""
    feeds: dict[str, set[str]] = {}
    for resource in graph.resources:
        for sources in resource.property_dependencies.values():
            for source in sources:
                feeds.setdefault(source, set()).add(resource.urn)
    seen: set[str] = set()
    todo = [urn]
    while todo:
        for consumer in feeds.get(todo.pop(), ()):
            if consumer not in seen:
                seen.add(consumer)
                todo.append(consumer)
    return seen


def real_urn(graph: Graph, urn: str) -> str:
    """The URN the Pulumi engine gives a resource: its type qualified by every ancestor's
    type (`urn.New` with the parent's qualified type). The offline engine's URNs follow the
    SDK's mocks, which keep only the parent's own type, so the chain is rebuilt here."""
    chain, current = [], graph.by_urn(urn)
    while True:
        chain.append(current.type)
        if not current.parent or current.parent.split("::")[2] == "pulumi:pulumi:Stack":
            break
        current = graph.by_urn(current.parent)
    return f"urn:pulumi:{graph.stack}::swarmstack::{'$'.join(reversed(chain))}::{graph.by_urn(urn).name}"


def names(graph: Graph, urns: set[str], type_: str) -> set[str]:
    return {graph.by_urn(u).name for u in urns if graph.by_urn(u).type == type_}


def test_the_runbooks_urns_are_the_programs(graph: Graph) -> None:
    documented = set(re.findall(r"urn:pulumi:[^\s`']+", RUNBOOK.read_text()))
    cloud = graph.cloud
    tls = "prod-tls" if cloud == "aws" else "prod-docker-api"
    ca_key = graph.one(KEY, "prod-tls-ca-key" if cloud == "aws" else "prod-docker-api-ca")
    ca_cert = graph.one(CERT, f"{tls}-ca")
    urn = real_urn(graph, ca_key.urn)
    assert urn.startswith(f"urn:pulumi:{graph.stack}::swarmstack::swarmstack:{cloud}:Cluster$"
                          f"swarmstack:{cloud}:DockerTls$tls:index/privateKey:PrivateKey::"), urn
    if cloud == "aws":
        assert urn in documented, (urn, documented)
        # The renewal's URN is shown with its head elided: its tail must be the program's.
        assert f"$tls:index/selfSignedCert:SelfSignedCert::{ca_cert.name}" in RUNBOOK.read_text()
    # `grep -o 'urn:pulumi:[^ ]*::<name>'` finds exactly this one.
    assert [r.urn for r in graph.resources if r.urn.endswith(f"::{ca_key.name}") and r.type == KEY] == [ca_key.urn]


def test_replacing_the_ca_key_reaches_the_certificates_not_the_leaf_keys(graph: Graph) -> None:
    cloud = graph.cloud
    tls = "prod-tls" if cloud == "aws" else "prod-docker-api"
    ca_key = graph.one(KEY, f"{tls}-ca-key" if cloud == "aws" else f"{tls}-ca")
    reached = dependents(graph, ca_key.urn)
    assert names(graph, reached, CERT) == {f"{tls}-ca"}
    assert names(graph, reached, SIGNED) == {f"{tls}-server", f"{tls}-client"}
    assert names(graph, reached, KEY) == set(), "a leaf's key would be replaced too"
    assert names(graph, reached, "tls:index/certRequest:CertRequest") == set()
    types = {graph.by_urn(u).type for u in reached}
    if cloud == "aws":
        assert names(graph, reached, "aws:ssm/parameter:Parameter") == {f"{tls}-ca-cert", f"{tls}-server-cert"}
        assert not any(t.startswith(("aws:ec2/launchTemplate", "aws:autoscaling/")) for t in types), types
    else:
        # As on AWS: the store's two certificate secrets change, the scale sets do not (the
        # managers read the new certificates on their next converge run).
        secrets = {graph.by_urn(u).outputs["name"] for u in reached
                   if graph.by_urn(u).type == "azure-native:keyvault:Secret"}
        assert secrets == {"docker-ca-cert", "docker-server-cert"}, secrets
        assert not any(t == "azure-native:compute:VirtualMachineScaleSet" for t in types), types
