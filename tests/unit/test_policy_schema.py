"""Every property path the rules read exists, under that camelCase name, in the installed
pulumi-aws / azure-native SDKs (the `@pulumi.getter(name=...)` names the engine uses)."""

from __future__ import annotations

import importlib
import typing
from typing import Any

import pytest

PACKAGES = {"aws": "pulumi_aws", "azure-native": "pulumi_azure_native"}

READ: dict[str, list[str]] = {
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": [
        "cidrIpv4", "cidrIpv6", "fromPort", "toPort", "ipProtocol", "prefixListId", "referencedSecurityGroupId",
        "securityGroupId"],
    "aws:ec2/securityGroupRule:SecurityGroupRule": [
        "type", "cidrBlocks", "ipv6CidrBlocks", "prefixListIds", "sourceSecurityGroupId", "self", "fromPort",
        "toPort", "protocol", "securityGroupId"],
    "aws:ec2/securityGroup:SecurityGroup": [
        "ingress.protocol", "ingress.fromPort", "ingress.toPort", "ingress.cidrBlocks", "ingress.ipv6CidrBlocks",
        "ingress.prefixListIds", "ingress.securityGroups", "ingress.self"],
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ["ingress.cidrBlocks", "egress.cidrBlocks"],
    "aws:ec2/launchTemplate:LaunchTemplate": [
        "metadataOptions.httpTokens", "metadataOptions.httpPutResponseHopLimit", "metadataOptions.httpEndpoint",
        "blockDeviceMappings.ebs.encrypted", "blockDeviceMappings.deviceName", "blockDeviceMappings.virtualName",
        "blockDeviceMappings.noDevice", "userData", "tags", "tagSpecifications.tags",
        "instanceMarketOptions.marketType", "vpcSecurityGroupIds", "networkInterfaces.securityGroups", "name"],
    "aws:ec2/instance:Instance": [
        "metadataOptions.httpTokens", "metadataOptions.httpPutResponseHopLimit", "rootBlockDevice.encrypted",
        "ebsBlockDevices.encrypted", "userData", "userDataBase64", "vpcSecurityGroupIds"],
    "aws:ebs/volume:Volume": ["encrypted"],
    "aws:efs/fileSystem:FileSystem": ["encrypted"],
    "aws:efs/mountTarget:MountTarget": ["securityGroups"],
    "azure-native:storage:FileShare": ["enabledProtocols", "accountName"],
    "azure-native:storage:StorageAccount": [
        "name", "accountName", "networkRuleSet.defaultAction", "networkRuleSet.ipRules.iPAddressOrRange"],
    "aws:autoscaling/group:Group": [
        "tags.key", "tags.value", "launchTemplate.id", "launchTemplate.name",
        "mixedInstancesPolicy.instancesDistribution.onDemandPercentageAboveBaseCapacity",
        "mixedInstancesPolicy.instancesDistribution.onDemandBaseCapacity",
        "mixedInstancesPolicy.launchTemplate.launchTemplateSpecification.launchTemplateId",
        "mixedInstancesPolicy.launchTemplate.launchTemplateSpecification.launchTemplateName",
        "desiredCapacity", "minSize", "maxSize", "availabilityZones", "vpcZoneIdentifiers"],
    "aws:ec2/subnet:Subnet": ["availabilityZone"],
    "aws:ec2/flowLog:FlowLog": ["vpcId"],
    "aws:cloudwatch/logGroup:LogGroup": ["retentionInDays", "kmsKeyId"],
    "aws:lb/loadBalancer:LoadBalancer": [
        "enableDeletionProtection", "accessLogs.enabled", "accessLogs.bucket", "securityGroups"],
    "aws:lb/listener:Listener": ["port", "protocol"],
    "aws:lb/targetGroup:TargetGroup": ["port", "protocol"],
    "aws:iam/policy:Policy": ["policy"],
    "aws:iam/rolePolicy:RolePolicy": ["policy"],
    "aws:iam/userPolicy:UserPolicy": ["policy"],
    "aws:iam/groupPolicy:GroupPolicy": ["policy"],
    "aws:iam/role:Role": ["inlinePolicies.policy"],
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ["policyArn"],
    "aws:ssm/association:Association": ["associationName", "name", "parameters", "scheduleExpression"],
    "aws:ssm/document:Document": ["content"],
    "aws:ssm/parameter:Parameter": ["type", "value", "insecureValue", "name"],
    "azure-native:keyvault:Vault": ["properties.enableSoftDelete", "properties.enablePurgeProtection"],
    "aws:ecr/repository:Repository": [
        "name", "imageScanningConfiguration.scanOnPush", "imageTagMutability", "encryptionConfigurations.encryptionType",
        "encryptionConfigurations.kmsKey"],
    "azure-native:containerregistry:Registry": ["registryName", "adminUserEnabled", "anonymousPullEnabled"],
    "azure-native:network:NetworkSecurityGroup": [
        f"securityRules.{p}" for p in ("access", "direction", "protocol", "sourceAddressPrefix",
                                       "sourceAddressPrefixes", "sourceApplicationSecurityGroups.id",
                                       "destinationPortRange", "destinationPortRanges", "name")],
    "azure-native:network:SecurityRule": [
        "access", "direction", "protocol", "sourceAddressPrefix", "sourceAddressPrefixes",
        "sourceApplicationSecurityGroups.id", "destinationPortRange", "destinationPortRanges", "name"],
    "azure-native:network:LoadBalancer": [
        "loadBalancingRules.frontendPort", "loadBalancingRules.backendPort", "loadBalancingRules.protocol",
        "inboundNatRules.frontendPort", "inboundNatRules.backendPort", "inboundNatPools.frontendPortRangeStart",
        "inboundNatPools.frontendPortRangeEnd", "inboundNatPools.backendPort"],
    "azure-native:network:InboundNatRule": ["frontendPort", "backendPort", "protocol"],
    "azure-native:network:VirtualNetwork": ["addressSpace.addressPrefixes"],
    "azure-native:compute:VirtualMachineScaleSet": [
        "virtualMachineProfile.securityProfile.encryptionAtHost",
        "virtualMachineProfile.storageProfile.osDisk.managedDisk.diskEncryptionSet.id",
        "virtualMachineProfile.storageProfile.dataDisks.managedDisk.diskEncryptionSet.id",
        "virtualMachineProfile.osProfile.customData", "virtualMachineProfile.osProfile.adminPassword",
        "virtualMachineProfile.osProfile.linuxConfiguration.disablePasswordAuthentication",
        "virtualMachineProfile.osProfile.windowsConfiguration", "virtualMachineProfile.userData",
        "virtualMachineProfile.priority", "priorityMixPolicy.regularPriorityPercentageAboveBase", "sku.capacity",
        "zones", "tags"],
    "azure-native:compute:VirtualMachine": [
        "osProfile.customData", "osProfile.linuxConfiguration.disablePasswordAuthentication", "userData",
        "securityProfile.encryptionAtHost", "storageProfile.osDisk.managedDisk.diskEncryptionSet.id"],
    "azure-native:compute:Disk": ["encryption.diskEncryptionSetId", "encryptionSettingsCollection.enabled"],
    "azure-native:operationalinsights:Workspace": ["retentionInDays"],
}


def _classes(token: str) -> list[type]:
    """The resource class (outputs) and its Args class (inputs) of a type token."""
    package, module, name = token.split(":")
    module_name = PACKAGES[package] + ("" if module.split("/")[0] == "index" else "." + module.split("/")[0])
    module_obj = importlib.import_module(module_name)
    return [getattr(module_obj, name), getattr(module_obj, f"{name}Args")]


def _properties(cls: type) -> dict[str, property]:
    found: dict[str, property] = {}
    for klass in reversed(cls.__mro__):
        for attr in vars(klass).values():
            if isinstance(attr, property) and hasattr(attr.fget, "_pulumi_name"):
                found[attr.fget._pulumi_name] = attr  # type: ignore[union-attr]
    return found


def _inner(hint: Any) -> type | None:
    """The pulumi input/output class inside Output[...], Optional[...], Sequence[...], Input[...]."""
    if isinstance(hint, type) and _properties(hint):
        return hint
    for arg in typing.get_args(hint):
        inner = _inner(arg)
        if inner is not None:
            return inner
    return None


def _has(cls: type, path: list[str]) -> bool:
    props = _properties(cls)
    head, rest = path[0], path[1:]
    if head not in props:
        return False
    if not rest:
        return True
    fget = props[head].fget
    assert fget is not None
    try:
        hint = typing.get_type_hints(fget, vars(importlib.import_module(fget.__module__)))["return"]
    except Exception:  # an annotation that does not resolve: follow nothing
        return False
    inner = _inner(hint)
    return inner is not None and _has(inner, rest)


@pytest.mark.parametrize("token", sorted(READ))
def test_the_rules_read_real_property_names(token: str) -> None:
    classes = _classes(token)
    missing = [path for path in READ[token] if not any(_has(cls, path.split(".")) for cls in classes)]
    assert missing == [], f"{token}: not in the SDK: {missing}"


def test_the_table_covers_every_type_the_rules_name() -> None:
    import re
    from pathlib import Path

    source = "\n".join(p.read_text() for p in Path(__file__).resolve().parents[2].joinpath("policies").glob("*.py")
                       if p.name not in ("testing.py",))
    named = set(re.findall(r'"((?:aws|azure-native):[a-zA-Z/]+:[A-Za-z]+)"', source))
    ignored = {"aws:alb/loadBalancer:LoadBalancer", "aws:alb/listener:Listener", "aws:alb/targetGroup:TargetGroup",
               "aws:iam/policyAttachment:PolicyAttachment", "aws:iam/userPolicyAttachment:UserPolicyAttachment",
               "aws:iam/groupPolicyAttachment:GroupPolicyAttachment"}  # aliases with the same properties
    assert named - ignored <= set(READ), sorted(named - ignored - set(READ))
