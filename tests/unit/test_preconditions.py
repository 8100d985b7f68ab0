"""What an Azure subscription needs before `pulumi up`, said by `swarmstack validate`."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from swarmstack.cli import main
from swarmstack.config.load import load_stack, read_stack_file, validate
from swarmstack.config.preconditions import azure_preconditions, quota_family, vcpus

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("size", "cpus", "family"), [
    ("Standard_D2s_v5", 2, "DSv5"), ("Standard_D4as_v5", 4, "DASv5"), ("Standard_B2s", 2, "BS"),
    ("Standard_E4-2s_v3", 4, "ESv3"), ("Standard_F16", 16, "F"), ("Standard_M128ms", 128, "MS"),
    ("Basic_A1", None, "Basic_A1"),
])
def test_sizes_say_their_vcpus_and_quota_family(size: str, cpus: int | None, family: str) -> None:
    assert vcpus(size) == cpus
    assert quota_family(size) == family


def test_prod_azure_needs_what_its_config_shows() -> None:
    settings = load_stack("prod-azure", ROOT)
    assert azure_preconditions(settings.cluster, settings.region) == [
        "the feature Microsoft.Compute/EncryptionAtHost registered: every scale set encrypts at host "
        "(az feature register --namespace Microsoft.Compute --name EncryptionAtHost; then "
        "az provider register --namespace Microsoft.Compute)",
        "the deployer holding Owner or User Access Administrator (Microsoft.Authorization/roleAssignments/write) "
        "on the subscription: the stack assigns roles to the nodes' identities; Contributor cannot",
        "these resource providers registered: Microsoft.Authorization, Microsoft.Compute, Microsoft.EventGrid, Microsoft.Insights, "
        "Microsoft.KeyVault, Microsoft.ManagedIdentity, Microsoft.Network, Microsoft.OperationalInsights, "
        "Microsoft.Storage (az provider register --namespace <name>)",
        f"vCPU quota in {settings.region}: 18 regular vCPUs in all (DSv5 18), and 8 Spot vCPUs (Total Regional "
        f"Spot vCPUs); compare with az vm list-usage --location {settings.region} --output table",
        "to destroy: delete rights on the vault's secrets in its data plane (Key Vault Secrets Officer, or "
        "Microsoft.KeyVault/vaults/secrets/delete) besides the management-plane rights; the production vault "
        "has purge protection, so it stays soft-deleted for its retention period",
    ]


def test_an_unreadable_size_is_named_and_aws_needs_nothing_here() -> None:
    source, config = read_stack_file("dev-azure", ROOT)
    config = copy.deepcopy(config)
    config["swarmstack:cluster"]["workers"][0]["instanceType"] = "Standard_NC24ads_A100_v4"
    settings = validate("dev-azure", source, config)
    lines = azure_preconditions(settings.cluster, settings.region)
    assert lines[3].startswith(f"vCPU quota in {settings.region}: 2 regular vCPUs in all (BS 2);")
    assert lines[-1] == ("quota for Standard_NC24ads_A100_v4: the size name does not say its vCPUs; look it up "
                         "with az vm list-sizes")
    aws = load_stack("prod-aws", ROOT)
    assert azure_preconditions(aws.cluster, aws.region) == []


def test_validate_prints_them_for_azure(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["validate", "prod-azure"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "Before `pulumi up`, the subscription needs (validate cannot check these offline):"
    assert out[2].startswith("  - the feature Microsoft.Compute/EncryptionAtHost registered") and len(out) == 7
    assert main(["validate", "prod-aws"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
