"""The private registry on Azure (issue 12): `prod-azure` with `registry` on, in our Azure
model: one Container Registry (Standard, admin user and anonymous pull off) and `AcrPull` for
each node identity on exactly that registry; the model refusing what ARM refuses."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from shipped import azure_model_of

from components.azure.registry import ACR_PULL, SKU, registry_name
from swarmstack.config.load import read_stack_file
from swarmstack.engine.azure import AzureBackend
from swarmstack.engine.graph import Graph
from swarmstack.engine.mocks import EngineError

ACR = "azure-native:containerregistry:Registry"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
def deployed() -> tuple[Graph, AzureBackend]:
    """prod-azure with the registry on, in a fresh Azure model: built once per test run
    (tests/unit/shipped.py), a copy of the graph and the model per call."""
    config = copy.deepcopy(read_stack_file("prod-azure")[1])
    config["swarmstack:cluster"]["registry"] = {"enabled": True, "repositories": ["app", "team/api"]}
    return azure_model_of("prod-azure", config)


def test_registry_names_fit_azures_rule() -> None:
    assert registry_name("prod", "a1b2c3") == "prodrega1b2c3"
    assert registry_name("my-very-long-cluster-name-28", "a1b2c3d4") == "myverylongclustername28rega1b2c3d4"
    assert registry_name("x", "a1b2") == "xrega1b2"  # 5 at least: "reg" and the suffix see to it


def test_one_standard_registry_without_admin_user_or_anonymous_pull() -> None:
    graph, _ = deployed()
    (registry,) = graph.of_type(ACR)
    assert registry.inputs["sku"] == {"name": SKU} == {"name": "Standard"}
    assert registry.inputs["adminUserEnabled"] is False and registry.inputs["anonymousPullEnabled"] is False
    assert registry.outputs["loginServer"] == f"{registry.inputs['registryName']}.azurecr.io"


def test_each_node_identity_may_pull_from_exactly_this_registry() -> None:
    graph, backend = deployed()
    (registry,) = graph.of_type(ACR)
    principals = {r.inputs["resourceName"].rsplit("-", 1)[-1]: r.outputs["principalId"] for r in graph.of_type(IDENTITY)}
    pulls = [r for r in graph.of_type(ROLE_ASSIGNMENT) if r.inputs["roleDefinitionId"].endswith(ACR_PULL)]
    assert {r.inputs["principalId"] for r in pulls} == {principals["managers"], principals["workers"]}
    assert all(r.inputs["scope"] == registry.id for r in pulls)
    assert all(backend.get(r.id).facts["role"] == "AcrPull" for r in pulls)  # type: ignore[union-attr]


def test_the_outputs_give_the_registry_and_the_listed_repositories() -> None:
    graph, _ = deployed()
    (registry,) = graph.of_type(ACR)
    (cluster,) = graph.of_type("swarmstack:azure:Cluster")
    host = registry.outputs["loginServer"]
    assert cluster.outputs["registry"] == host
    assert cluster.outputs["registryRepositories"] == {"app": f"{host}/app", "team/api": f"{host}/team/api"}


def _registry(backend: AzureBackend, **inputs: Any) -> None:
    backend.create("azure-native:resources:ResourceGroup", "rg", {"resourceGroupName": "rg", "location": "westeurope"})
    backend.create(ACR, "acr", {"resourceGroupName": "rg", "location": "westeurope", "sku": {"name": "Standard"},
                                **inputs})


@pytest.mark.parametrize(("inputs", "message"), [
    ({"registryName": "abcd"}, "registry name 'abcd' must be 5-50 letters and digits"),
    ({"registryName": "has-dash"}, "registry name 'has-dash' must be 5-50 letters and digits"),
    ({"registryName": "a" * 51}, "must be 5-50 letters and digits"),
    ({"registryName": "okname", "sku": {"name": "Gold"}}, "sku.name 'Gold' must be one of Basic, Standard, Premium"),
    ({"registryName": "okname", "sku": {"name": "Basic"}, "anonymousPullEnabled": True},
     "anonymous pull needs the Standard or Premium SKU"),
    ({"registryName": "okname", "publicNetworkAccess": "Disabled"},
     "publicNetworkAccess Disabled (private endpoints) needs the Premium SKU"),
])
def test_the_model_refuses_what_arm_refuses(inputs: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _registry(AzureBackend("westeurope"), **inputs)


def test_registry_names_are_global_and_case_insensitive() -> None:
    backend = AzureBackend("westeurope")
    _registry(backend, registryName="SwarmReg1")
    with pytest.raises(EngineError, match="registry name 'swarmreg1' is taken"):
        backend.create(ACR, "again", {"resourceGroupName": "rg", "location": "westeurope", "sku": {"name": "Basic"},
                                      "registryName": "swarmreg1"})


def test_the_pack_passes_the_registry() -> None:
    from swarmstack.policy import evaluate

    graph, _ = deployed()
    assert [f for f in evaluate(graph) if "registry" in f.rule or "acr" in f.rule] == []
