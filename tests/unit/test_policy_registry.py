"""The registry rules: a happy-path repository or registry, one property changed, the exact message."""

from __future__ import annotations

from typing import Any

from policy_testing import messages, resource

from policies import registry

ECR = "aws:ecr/repository:Repository"
ACR = "azure-native:containerregistry:Registry"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1"


def repository(**changes: Any) -> Any:
    props: dict[str, Any] = {"name": "prod/app", "imageTagMutability": "IMMUTABLE",
                             "imageScanningConfiguration": {"scanOnPush": True},
                             "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY}]}
    props.update(changes)
    return resource(ECR, "prod-registry-app", props)


def acr(**changes: Any) -> Any:
    props: dict[str, Any] = {"registryName": "prodrega1b2c3", "resourceGroupName": "rg", "sku": {"name": "Standard"},
                             "adminUserEnabled": False, "anonymousPullEnabled": False}
    props.update(changes)
    return resource(ACR, "prod-registry", props)


RULES = (registry.registry_scan_on_push, registry.registry_encrypted, registry.registry_tags_immutable)


def test_the_repository_swarmstack_makes_passes_every_rule() -> None:
    for rule in RULES:
        assert messages(rule, repository()) == [], rule.name
    assert messages(registry.acr_no_shared_access, acr()) == []


def test_a_repository_that_does_not_scan_on_push_is_refused() -> None:
    expected = ["repository prod/app does not scan images on push (imageScanningConfiguration.scanOnPush is not "
                "true): a known-vulnerable image reaches the nodes unnoticed"]
    assert messages(registry.registry_scan_on_push, repository(imageScanningConfiguration={"scanOnPush": False})) \
        == expected
    assert messages(registry.registry_scan_on_push, repository(imageScanningConfiguration=None)) == expected


def test_a_repository_without_a_customer_key_is_refused() -> None:
    assert messages(registry.registry_encrypted, repository(encryptionConfigurations=None)) == [
        "repository prod/app is encrypted with AES256 (S3-managed keys), not a KMS key the account controls: "
        "nobody can audit or revoke who reads the images"]
    assert messages(registry.registry_encrypted, repository(encryptionConfigurations=[{"encryptionType": "KMS"}])) == [
        "repository prod/app uses the AWS-managed key aws/ecr: its policy cannot be narrowed; name the cluster's "
        "key in kmsKey"]


def test_a_key_not_known_in_preview_still_counts_as_a_key() -> None:
    assert messages(registry.registry_encrypted, repository(), preview=True) == []


def test_mutable_tags_are_advised_against() -> None:
    assert messages(registry.registry_tags_immutable, repository(imageTagMutability="MUTABLE")) == [
        "repository prod/app lets a pushed tag move to another image (imageTagMutability MUTABLE): a service "
        "redeployed by tag may run other code"]
    assert registry.registry_tags_immutable.enforcement_level.value == "advisory"


def test_an_acr_with_its_admin_user_or_anonymous_pull_is_refused() -> None:
    assert messages(registry.acr_no_shared_access, acr(adminUserEnabled=True)) == [
        "container registry prodrega1b2c3 has its admin user on: one shared user name and password can push and "
        "pull everything, and no identity is recorded"]
    assert messages(registry.acr_no_shared_access, acr(anonymousPullEnabled=True)) == [
        "container registry prodrega1b2c3 allows anonymous pull: anyone on the internet can pull the cluster's "
        "images"]
