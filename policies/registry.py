"""The private registry: images are scanned when pushed and encrypted under a customer key
(ECR), no shared password or anonymous pull (Azure Container Registry)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, StackValidationPolicy

from ._props import as_list, dig, is_unknown, plain, truthy
from ._rules import Report, resource_rule

ECR_REPOSITORY = "aws:ecr/repository:Repository"
ACR = "azure-native:containerregistry:Registry"


def _name(props: dict[str, object], fallback: str) -> str:
    name = props.get("name") or props.get("registryName")
    return str(name) if isinstance(name, str) and not is_unknown(name) else fallback


def _scan_on_push(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    scan = dig(props, "imageScanningConfiguration", "scanOnPush", default=False)
    if not is_unknown(scan) and not truthy(scan):
        report(f"repository {_name(props, args.name)} does not scan images on push "
               "(imageScanningConfiguration.scanOnPush is not true): a known-vulnerable image reaches the nodes "
               "unnoticed")


registry_scan_on_push = resource_rule(
    name="registry-scan-on-push",
    resource_types=(ECR_REPOSITORY,),
    description="ECR repositories scan every image on push.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_scan_on_push,
    remediation_steps="Set imageScanningConfiguration: {scanOnPush: true} (swarmstack's registry does).",
)


def _encrypted(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    configs = as_list(props.get("encryptionConfigurations"))
    config = configs[0] if configs and isinstance(configs[0], dict) else {}
    kind = config.get("encryptionType", "AES256")
    if is_unknown(kind):
        return
    if kind != "KMS":
        report(f"repository {_name(props, args.name)} is encrypted with {kind} (S3-managed keys), not a KMS "
               "key the account controls: nobody can audit or revoke who reads the images")
    elif not config.get("kmsKey"):
        report(f"repository {_name(props, args.name)} uses the AWS-managed key aws/ecr: its policy cannot be "
               "narrowed; name the cluster's key in kmsKey")


registry_encrypted = resource_rule(
    name="registry-encrypted-with-customer-key",
    resource_types=(ECR_REPOSITORY,),
    description="ECR repositories are encrypted with a customer-managed KMS key.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_encrypted,
    remediation_steps="Set encryptionConfigurations: [{encryptionType: KMS, kmsKey: <the cluster key's ARN>}]; "
                      "the encryption of a repository is fixed when it is created (it is replaced).",
)


def _immutable(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    mutability = props.get("imageTagMutability", "MUTABLE")
    if not is_unknown(mutability) and mutability != "IMMUTABLE":
        report(f"repository {_name(props, args.name)} lets a pushed tag move to another image "
               f"(imageTagMutability {mutability}): a service redeployed by tag may run other code")


registry_tags_immutable = resource_rule(
    name="registry-tags-immutable",
    resource_types=(ECR_REPOSITORY,),
    description="ECR repositories keep tags immutable.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_immutable,
    remediation_steps="Set registry.immutableTags: true (imageTagMutability IMMUTABLE), or deploy by digest.",
)


def _acr_no_admin_user(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    if truthy(props.get("adminUserEnabled")):
        report(f"container registry {_name(props, args.name)} has its admin user on: one shared user name and "
               "password can push and pull everything, and no identity is recorded")
    if truthy(props.get("anonymousPullEnabled")):
        report(f"container registry {_name(props, args.name)} allows anonymous pull: anyone on the internet can "
               "pull the cluster's images")


acr_no_shared_access = resource_rule(
    name="acr-no-admin-user-or-anonymous-pull",
    resource_types=(ACR,),
    description="Azure Container Registries have the admin user and anonymous pull off.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_acr_no_admin_user,
    remediation_steps="Set adminUserEnabled: false and anonymousPullEnabled: false; give pullers AcrPull on the "
                      "registry and let them log in with their managed identity.",
)

RESOURCE_POLICIES = [registry_scan_on_push, registry_encrypted, registry_tags_immutable, acr_no_shared_access]
STACK_POLICIES: list[StackValidationPolicy] = []
