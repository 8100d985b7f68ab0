"""Where the swarm's secrets live: SSM parameters holding keys or tokens are SecureString,
Azure Key Vaults can be recovered."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, StackValidationArgs

from ._cluster import summaries
from ._props import dig, is_unknown, need, plain, truthy
from ._rules import Report, resource_rule, stack_rule
from .nodes import SECRET_PATTERNS

SSM_PARAMETER = "aws:ssm/parameter:Parameter"
KEY_VAULT = "azure-native:keyvault:Vault"


def _ssm_secrets_secure_string(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    if need(props.get("type"), "type") == "SecureString":
        return
    value = props.get("value") if props.get("value") is not None else props.get("insecureValue")
    if value is None:
        return
    text = need(value, "value")
    for pattern, what in SECRET_PATTERNS:
        if pattern.search(str(text)):
            report(f"parameter {props.get('name', args.name)} holds {what} as a plain {props.get('type')}; "
                   "store it as SecureString (encrypted with the cluster's KMS key)")
            return


ssm_secrets_secure_string = resource_rule(
    name="ssm-secrets-secure-string",
    resource_types=(SSM_PARAMETER,),
    description="SSM parameters that hold a join token, a private key or an access key are SecureString.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_ssm_secrets_secure_string,
    remediation_steps="Create the parameter with type SecureString and the cluster's KMS key (keyId); nodes "
                      "read it with kms:Decrypt through SSM.",
)


def _key_vault_recoverable(args: StackValidationArgs, report: Report) -> None:
    if not any(s.production for s in summaries(args.resources)):
        args.not_applicable("the stack is not marked production")
    for resource in args.resources:
        if resource.resource_type != KEY_VAULT:
            continue
        props = plain(resource.props)
        soft_delete = dig(props, "properties", "enableSoftDelete", default=True)  # Azure's default: on
        purge = dig(props, "properties", "enablePurgeProtection")
        if not is_unknown(soft_delete) and not truthy(soft_delete):
            report(f"key vault {resource.name}: properties.enableSoftDelete is false, so a deleted vault and its "
                   "keys are gone at once", resource.urn)
        if not is_unknown(purge) and not truthy(purge):
            report(f"key vault {resource.name}: properties.enablePurgeProtection is not true, so a deleted vault "
                   "can be purged before its retention ends, taking the swarm's tokens and TLS keys with it",
                   resource.urn)


key_vault_recoverable = stack_rule(
    name="key-vault-recoverable",
    description="In production, Key Vaults keep soft delete on and turn purge protection on.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_key_vault_recoverable,
    remediation_steps="Set properties.enableSoftDelete: true and properties.enablePurgeProtection: true "
                      "(purge protection cannot be turned off again).",
)

RESOURCE_POLICIES = [ssm_secrets_secure_string]
STACK_POLICIES = [key_vault_recoverable]
