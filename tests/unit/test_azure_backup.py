"""The raft backup container on Azure: the real program's graph in our Azure model, the
model refusing what Azure Storage refuses, and the pure parts."""

from __future__ import annotations

import base64
import copy
import gzip
from typing import Any

import pytest
from shipped import azure_model_of

from components.azure.backup import BLOB_CONTRIBUTOR, CONTAINER, NONCURRENT_DAYS, management_policy, store_url
from swarmstack.config.load import read_stack_file
from swarmstack.engine.azure import AzureBackend
from swarmstack.engine.graph import Graph
from swarmstack.engine.mocks import EngineError

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
VMSS = "azure-native:compute:VirtualMachineScaleSet"


def _run(stack: str, mutate: Any = None) -> tuple[Graph, AzureBackend]:
    """The stack (its cluster config changed by `mutate`) in a fresh Azure model: built once
    per test run (tests/unit/shipped.py), a copy of the graph and the model per call."""
    config = copy.deepcopy(read_stack_file(stack)[1])
    if mutate:
        mutate(config["swarmstack:cluster"])
    return azure_model_of(stack, config)


def _custom_data(graph: Graph) -> dict[str, str]:
    return {r.inputs["tags"]["swarmstack:pool"]: gzip.decompress(base64.b64decode(
        r.inputs["virtualMachineProfile"]["osProfile"]["customData"])).decode() for r in graph.of_type(VMSS)}


def test_the_container_is_private_versioned_and_expires_backups() -> None:
    graph, backend = _run("prod-azure")
    (container,) = graph.of_type("azure-native:storage:BlobContainer")
    assert container.inputs["containerName"] == CONTAINER and container.outputs["publicAccess"] == "None"
    (service,) = graph.of_type("azure-native:storage:BlobServiceProperties")
    assert service.inputs["isVersioningEnabled"] is True
    (account,) = graph.of_type("azure-native:storage:StorageAccount")
    assert account.inputs["allowBlobPublicAccess"] is False and account.inputs["allowSharedKeyAccess"] is False
    assert backend.get(account.id).facts["versioning"] is True
    (policy,) = graph.of_type("azure-native:storage:ManagementPolicy")
    (rule,) = policy.inputs["policy"]["rules"]
    assert rule["definition"]["filters"] == {"blobTypes": ["blockBlob"], "prefixMatch": ["backups/swarm/"]}
    actions = rule["definition"]["actions"]
    assert actions["baseBlob"]["delete"] == {"daysAfterModificationGreaterThan": 14}
    assert actions["version"]["delete"] == {"daysAfterCreationGreaterThan": NONCURRENT_DAYS}


def test_only_the_managers_may_use_the_container() -> None:
    graph, _ = _run("prod-azure")
    (container,) = graph.of_type("azure-native:storage:BlobContainer")
    identities = {r.name.rsplit("-", 1)[-1]: r.outputs["principalId"]
                  for r in graph.of_type("azure-native:managedidentity:UserAssignedIdentity")}
    blob_grants = [r for r in graph.of_type(ROLE_ASSIGNMENT) if r.inputs["roleDefinitionId"].endswith(BLOB_CONTRIBUTOR)]
    assert [(g.inputs["principalId"], g.inputs["scope"]) for g in blob_grants] == [(identities["managers"], container.id)]
    # no grant on the account or group could reach the container for anyone else
    account = graph.of_type("azure-native:storage:StorageAccount")[0]
    for grant in graph.of_type(ROLE_ASSIGNMENT):
        if grant.inputs["principalId"] == identities["workers"]:
            assert not container.id.lower().startswith(grant.inputs["scope"].lower()), grant.name
        assert grant.inputs["scope"].lower() != account.id.lower(), grant.name


def test_production_protects_the_container() -> None:
    graph, _ = _run("prod-azure")
    (container,) = graph.of_type("azure-native:storage:BlobContainer")
    assert container.protect


def test_only_the_managers_custom_data_names_the_store() -> None:
    graph, _ = _run("prod-azure")
    store = graph.outputs["backupStore"]
    account = graph.of_type("azure-native:storage:StorageAccount")[0].outputs["name"]
    assert store == f"https://{account}.blob.core.windows.net/backups"
    data = _custom_data(graph)
    assert store in data["managers"]
    assert all(store not in text for pool, text in data.items() if pool != "managers")


def test_dev_has_no_container_unless_asked_and_then_no_protection() -> None:
    graph, _ = _run("dev-azure")
    assert not graph.of_type("azure-native:storage:BlobContainer") and "backupStore" not in graph.outputs
    graph, _ = _run("dev-azure", lambda c: c.update(backup={"enabled": True, "retentionDays": 2}))
    (container,) = graph.of_type("azure-native:storage:BlobContainer")
    assert not container.protect
    (policy,) = graph.of_type("azure-native:storage:ManagementPolicy")
    assert policy.inputs["policy"]["rules"][0]["definition"]["actions"]["baseBlob"]["delete"] == {
        "daysAfterModificationGreaterThan": 2}


# ---------------------------------------------------------------- the model

@pytest.fixture
def account() -> tuple[AzureBackend, dict[str, Any]]:
    az = AzureBackend("westeurope")
    az.create("azure-native:resources:ResourceGroup", "rg", {"resourceGroupName": "rg", "location": "westeurope"})
    az.create("azure-native:storage:StorageAccount", "sa", {
        "resourceGroupName": "rg", "accountName": "swarmsa1", "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
        "allowBlobPublicAccess": False})
    return az, {"resourceGroupName": "rg", "accountName": "swarmsa1"}


def test_the_blob_service_is_the_accounts_one_default(account: tuple[AzureBackend, dict[str, Any]]) -> None:
    az, where = account
    with pytest.raises(EngineError, match="blobServicesName must be 'default'"):
        az.create("azure-native:storage:BlobServiceProperties", "b", {**where, "blobServicesName": "mine"})
    with pytest.raises(EngineError, match="does not exist"):
        az.create("azure-native:storage:BlobServiceProperties", "b", {**where, "accountName": "nosuchaccount"})
    az.create("azure-native:storage:BlobServiceProperties", "b", {**where, "blobServicesName": "default",
                                                                  "isVersioningEnabled": True})
    with pytest.raises(EngineError, match="exists already"):
        az.create("azure-native:storage:BlobServiceProperties", "b2", {**where, "blobServicesName": "default"})


@pytest.mark.parametrize(("inputs", "message"), [
    ({"containerName": "Backups"}, "must be 3-63 lowercase"),
    ({"containerName": "ba--ckups"}, "must be 3-63 lowercase"),
    ({"containerName": "bk"}, "must be 3-63 lowercase"),
    ({"containerName": "backups", "publicAccess": "Blob"}, "PublicAccessNotPermitted"),
    ({"containerName": "backups", "publicAccess": "Everyone"}, "publicAccess must be None, Blob or Container"),
])
def test_containers_azure_refuses(account: tuple[AzureBackend, dict[str, Any]], inputs: dict[str, Any],
                                  message: str) -> None:
    az, where = account
    with pytest.raises(EngineError, match=message):
        az.create("azure-native:storage:BlobContainer", "c", {**where, **inputs})


def _rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": "expire", "enabled": True, "type": "Lifecycle", "definition": {
        "filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["backups/swarm/"]},
        "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 14.0}}}}}
    rule.update(changes)
    return rule


@pytest.mark.parametrize(("rules", "message"), [
    ([_rule(name="bad name!")], "rule name 'bad name!'"),
    ([_rule(), _rule()], "rule names must be unique"),
    ([], "1 to 100 rules"),
    ([_rule(definition={"filters": {"blobTypes": ["pageBlob"]}, "actions": {"baseBlob": {"delete": {
        "daysAfterModificationGreaterThan": 1}}}})], "blobTypes must list blockBlob"),
    ([_rule(definition={"filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["/swarm"]},
                        "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 1}}}})],
     "must start with a container name"),
    ([_rule(definition={"filters": {"blobTypes": ["blockBlob"]}, "actions": {}})], "actions must have"),
    ([_rule(definition={"filters": {"blobTypes": ["blockBlob"]}, "actions": {"version": {"delete": {
        "daysAfterCreationGreaterThan": -1}}}})], "must be a whole number of days 0 to 99999"),
    ([_rule(definition={"filters": {"blobTypes": ["blockBlob"]}, "actions": {"baseBlob": {"delete": {
        "daysAfterModificationGreaterThan": 1.5}}}})], "must be a whole number of days 0 to 99999"),
])
def test_lifecycle_policies_azure_refuses(account: tuple[AzureBackend, dict[str, Any]], rules: list[Any],
                                          message: str) -> None:
    az, where = account
    with pytest.raises(EngineError, match=message):
        az.create("azure-native:storage:ManagementPolicy", "p", {**where, "managementPolicyName": "default",
                                                                 "policy": {"rules": rules}})


def test_a_lifecycle_policy_is_the_accounts_one_default(account: tuple[AzureBackend, dict[str, Any]]) -> None:
    az, where = account
    with pytest.raises(EngineError, match="managementPolicyName must be 'default'"):
        az.create("azure-native:storage:ManagementPolicy", "p", {**where, "managementPolicyName": "expiry",
                                                                 "policy": {"rules": [_rule()]}})
    az.create("azure-native:storage:ManagementPolicy", "p", {**where, "managementPolicyName": "default",
                                                             "policy": {"rules": [_rule()]}})


def test_the_blob_role_applies_to_containers_not_vaults() -> None:
    graph, backend = _run("prod-azure")
    vault = graph.of_type("azure-native:keyvault:Vault")[0]
    manager = next(r.outputs["principalId"] for r in graph.of_type("azure-native:managedidentity:UserAssignedIdentity")
                   if r.name.endswith("managers"))
    definition = f"/subscriptions/{backend.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/" \
                 f"{BLOB_CONTRIBUTOR}"
    with pytest.raises(EngineError, match="does not apply to a vaults"):
        backend.create(ROLE_ASSIGNMENT, "x", {"principalId": manager, "roleDefinitionId": definition,
                                              "scope": vault.id})


def test_the_pure_parts() -> None:
    assert store_url("https://acct.blob.core.windows.net/") == "https://acct.blob.core.windows.net/backups"
    with pytest.raises(ValueError, match="retention_days 0"):
        management_policy(0)
