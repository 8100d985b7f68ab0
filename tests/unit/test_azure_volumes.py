"""Shared volumes on Azure, built by the real program in the Azure model: a premium
FileStorage account reachable from the node subnets only, one NFS share; and the model
refuses what Azure refuses (an NFS share with secure transfer on, a quota under the premium
minimum, a subnet rule without the service endpoint)."""

from __future__ import annotations

from typing import Any

import pytest
from shipped import azure_model_of

from components.azure.volumes import MOUNT_OPTIONS, volume_create_command
from swarmstack.engine.azure import AzureBackend
from swarmstack.engine.graph import Graph, Resource
from swarmstack.engine.mocks import EngineError
from tests.unit.test_azure_stacks import cluster_of

ACCOUNT = "azure-native:storage:StorageAccount"
SHARE = "azure-native:storage:FileShare"


def run(stack: str, shared: dict[str, Any] | None) -> tuple[Graph, AzureBackend]:
    config = cluster_of(stack)
    if shared is not None:
        config["swarmstack:cluster"]["sharedVolumes"] = shared
    return azure_model_of(stack, config)  # built once per test run (tests/unit/shipped.py)


@pytest.fixture(scope="module")
def prod() -> tuple[Graph, AzureBackend]:
    return run("prod-azure", {"enabled": True, "quotaGiB": 256})


def nfs_account(graph: Graph) -> Resource:
    [account] = [a for a in graph.of_type(ACCOUNT) if a.outputs.get("kind") == "FileStorage"]
    return account


def test_a_premium_file_storage_account_closed_but_to_the_node_subnets(prod: tuple[Graph, AzureBackend]) -> None:
    graph, _ = prod
    account = nfs_account(graph).outputs
    assert account["sku"]["name"] == "Premium_ZRS"  # production: zone-redundant
    assert account["enableHttpsTrafficOnly"] is False and account["allowSharedKeyAccess"] is False
    rules = account["networkRuleSet"]
    assert rules["defaultAction"] == "Deny" and rules["bypass"] == "None" and rules["ipRules"] == []
    subnets = graph.outputs["nodeSubnetIds"]
    assert sorted(r["virtualNetworkResourceId"] for r in rules["virtualNetworkRules"]) == sorted(
        [subnets["managers"], subnets["workers"]])
    assert all(r["action"] == "Allow" for r in rules["virtualNetworkRules"])


def test_one_nfs_share_of_the_asked_size(prod: tuple[Graph, AzureBackend]) -> None:
    graph, _ = prod
    [share] = graph.of_type(SHARE)
    assert share.outputs["enabledProtocols"] == "NFS" and share.outputs["shareQuota"] == 256
    assert share.outputs["accountName"] == nfs_account(graph).outputs["name"]
    assert share.outputs["rootSquash"] == "NoRootSquash"


def test_the_outputs_say_how_to_mount_it(prod: tuple[Graph, AzureBackend]) -> None:
    graph, _ = prod
    account = nfs_account(graph).outputs["name"]
    out = graph.outputs["sharedVolumes"]
    assert out == {"account": account, "address": f"{account}.file.core.windows.net",
                   "device": f":/{account}/volumes", "volumeCreate": volume_create_command(account)}
    assert "vers=4,minorversion=1,sec=sys" in MOUNT_OPTIONS


def test_the_share_account_is_not_the_stores_account(prod: tuple[Graph, AzureBackend]) -> None:
    graph, _ = prod
    names = [a.outputs["name"] for a in graph.of_type(ACCOUNT)]
    assert len(names) == len(set(names)) == 2


def test_dev_gets_the_minimum_locally_redundant_share_and_shipped_stacks_none() -> None:
    graph, _ = run("dev-azure", {"enabled": True})
    assert nfs_account(graph).outputs["sku"]["name"] == "Premium_LRS"
    assert graph.of_type(SHARE)[0].outputs["shareQuota"] == 100
    plain, _ = run("dev-azure", None)
    assert not plain.of_type(SHARE) and "sharedVolumes" not in plain.outputs


# ------------------------------------------------------------------ the model is as strict as Azure

@pytest.fixture
def az() -> AzureBackend:
    backend = AzureBackend("westeurope")
    backend.seed_network("rg", "net", ["10.9.0.0/16"], {"nodes": "10.9.1.0/24"})
    return backend


def _account(az: AzureBackend, name: str, **extra: Any) -> str:
    inputs = {"resourceGroupName": "rg", "accountName": name, "kind": "FileStorage",
              "sku": {"name": "Premium_LRS"}, "enableHttpsTrafficOnly": False, **extra}
    rid, _ = az.create(ACCOUNT, name, inputs)
    return rid


def test_the_model_refuses_an_nfs_share_with_secure_transfer_on(az: AzureBackend) -> None:
    _account(az, "securefiles", enableHttpsTrafficOnly=True)
    with pytest.raises(EngineError, match="unreachable while secure transfer is required"):
        az.create(SHARE, "s", {"resourceGroupName": "rg", "accountName": "securefiles", "shareName": "volumes",
                               "enabledProtocols": "NFS", "shareQuota": 100})


def test_the_model_refuses_a_premium_share_under_100_gib(az: AzureBackend) -> None:
    _account(az, "smallfiles")
    with pytest.raises(EngineError, match="shareQuota 50 GiB is outside 100-102400 for a premium share"):
        az.create(SHARE, "s", {"resourceGroupName": "rg", "accountName": "smallfiles", "shareName": "volumes",
                               "enabledProtocols": "NFS", "shareQuota": 50})


def test_the_model_refuses_nfs_outside_file_storage_and_bad_names(az: AzureBackend) -> None:
    az.create(ACCOUNT, "gp", {"resourceGroupName": "rg", "accountName": "generalpurpose", "kind": "StorageV2",
                              "sku": {"name": "Standard_LRS"}, "enableHttpsTrafficOnly": False})
    with pytest.raises(EngineError, match="NFS shares need a premium FileStorage account"):
        az.create(SHARE, "s", {"resourceGroupName": "rg", "accountName": "generalpurpose", "shareName": "volumes",
                               "enabledProtocols": "NFS"})
    _account(az, "okfiles")
    with pytest.raises(EngineError, match="share name 'Vol--umes' must be"):
        az.create(SHARE, "s2", {"resourceGroupName": "rg", "accountName": "okfiles", "shareName": "Vol--umes",
                                "enabledProtocols": "NFS"})
    with pytest.raises(EngineError, match="FileStorage account is premium only"):
        az.create(ACCOUNT, "std", {"resourceGroupName": "rg", "accountName": "stdfiles", "kind": "FileStorage",
                                   "sku": {"name": "Standard_LRS"}})


def test_the_model_refuses_a_subnet_rule_without_the_storage_endpoint(az: AzureBackend) -> None:
    subnet = az.get(az.arm_id("rg", "Microsoft.Network", "virtualNetworks", "net") + "/subnets/nodes")
    assert subnet is not None
    with pytest.raises(EngineError, match=r"has no service endpoint for Microsoft\.Storage"):
        _account(az, "fencedfiles", networkRuleSet={
            "defaultAction": "Deny", "virtualNetworkRules": [{"virtualNetworkResourceId": subnet.id}]})


# ------------------------------------------------------------------ the policy pack over the real program

def test_the_pack_passes_the_nfs_share_and_its_rule_bites(prod: tuple[Graph, AzureBackend]) -> None:
    import copy

    from swarmstack.policy import evaluate

    graph, _ = prod
    assert [f for f in evaluate(graph) if f.level == "mandatory"] == []
    preview = evaluate(graph, preview=True)
    assert [f for f in preview if f.level == "mandatory" and not f.message.startswith("can't run policy")] == []
    broken = copy.deepcopy(graph)
    account = nfs_account(broken)
    account.outputs["networkRuleSet"]["defaultAction"] = "Allow"
    assert "nfs-account-network-closed" in {f.rule for f in evaluate(broken) if f.level == "mandatory"}


def test_the_estimate_prices_the_provisioned_share(prod: tuple[Graph, AzureBackend]) -> None:
    from decimal import Decimal

    from swarmstack.cost import estimate
    from swarmstack.prices import load_prices

    graph, _ = prod
    result = estimate(graph, "westeurope", load_prices("azure"))
    [item] = [i for i in result.items if i.resource == "prod-volumes-share"]
    assert (item.quantity, item.unit_price, item.monthly) == (Decimal(256), Decimal("0.2223"), Decimal("56.91"))
    assert not [i for i in result.items if i.resource == "prod-volumes-account"]


def test_every_scale_set_is_deleted_before_the_share(prod: tuple[Graph, AzureBackend]) -> None:
    """A node whose NFS server vanished first would hang on its hard mounts while it drains."""
    graph, _ = prod
    scale_sets = graph.of_type("azure-native:compute:VirtualMachineScaleSet")
    [share] = graph.of_type(SHARE)
    assert scale_sets
    for scale_set in scale_sets:
        assert graph.depends_on(scale_set.urn, share.urn) and graph.depends_on(scale_set.urn, nfs_account(graph).urn)
