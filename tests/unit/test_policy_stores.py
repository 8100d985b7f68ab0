"""Secret stores: SSM parameters with secrets are SecureString; Key Vaults can be recovered."""

from __future__ import annotations

from typing import Any

from policy_testing import messages, resource, summary

from policies import stores

KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n"
SSM = "aws:ssm/parameter:Parameter"
VAULT = "azure-native:keyvault:Vault"


def parameter(**changes: Any) -> Any:
    props = {"name": "/swarmstack/prod/docker-api/server-key", "type": "SecureString", "value": KEY,
             "keyId": "arn:aws:kms:eu-west-1:123456789012:key/1"}
    props.update(changes)
    return resource(SSM, "server-key", props)


def test_secure_parameters_pass() -> None:
    assert messages(stores.ssm_secrets_secure_string, parameter()) == []
    cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    assert messages(stores.ssm_secrets_secure_string, parameter(type="String", value=cert)) == []


def test_a_plain_parameter_holding_a_secret_is_refused() -> None:
    assert messages(stores.ssm_secrets_secure_string, parameter(type="String")) == [
        "parameter /swarmstack/prod/docker-api/server-key holds a private key (-----BEGIN … PRIVATE KEY-----) as a "
        "plain String; store it as SecureString (encrypted with the cluster's KMS key)"]
    token = parameter(name="/swarmstack/prod/tokens/worker", type="String", value="SWMTKN-1-abc123-def456")
    assert messages(stores.ssm_secrets_secure_string, token) == [
        "parameter /swarmstack/prod/tokens/worker holds a swarm join token (SWMTKN-1-…) as a plain String; store it "
        "as SecureString (encrypted with the cluster's KMS key)"]


def vault(**properties: Any) -> Any:
    props = {"enableRbacAuthorization": True, "enableSoftDelete": True, "enablePurgeProtection": True,
             "softDeleteRetentionInDays": 90.0, "sku": {"family": "A", "name": "standard"}}
    props.update(properties)
    return resource(VAULT, "vault", {"resourceGroupName": "rg", "properties": props})


def test_a_recoverable_vault_passes() -> None:
    assert messages(stores.key_vault_recoverable, summary(cloud="azure"), vault()) == []
    dev = summary(cloud="azure", production=False)
    assert messages(stores.key_vault_recoverable, dev, vault(enablePurgeProtection=False)) == []


def test_an_unrecoverable_vault_in_production_is_reported() -> None:
    prod = summary(cloud="azure")
    assert messages(stores.key_vault_recoverable, prod, vault(enablePurgeProtection=False)) == [
        "key vault vault: properties.enablePurgeProtection is not true, so a deleted vault can be purged before its "
        "retention ends, taking the swarm's tokens and TLS keys with it"]
    assert messages(stores.key_vault_recoverable, prod, vault(enableSoftDelete=False)) == [
        "key vault vault: properties.enableSoftDelete is false, so a deleted vault and its keys are gone at once"]
