"""The machines: instance metadata, disks, user data and logins of launch templates,
instances and Azure scale sets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
)

from ._props import as_list, dig, is_unknown, need, number, plain, truthy
from ._rules import Report, resource_rule
from ._userdata import NODES_WITH_USER_DATA, decode_user_data, user_data_fields, written_files

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
EBS_VOLUME = "aws:ebs/volume:Volume"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
AZURE_VM = "azure-native:compute:VirtualMachine"
AZURE_DISK = "azure-native:compute:Disk"

# --- imdsv2-required -------------------------------------------------------------------------


def _imdsv2_required(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    max_hops = int(args.get_config().get("maxHopLimit", 2))
    options = need(props.get("metadataOptions"), "metadataOptions")
    if not isinstance(options, dict):
        report("metadataOptions is not set, so IMDSv1 stays on: set httpTokens: required "
               f"and httpPutResponseHopLimit: 1 to {max_hops}")
        return
    if str(need(options.get("httpEndpoint", "enabled"), "metadataOptions", "httpEndpoint")) == "disabled":
        return  # no metadata service at all: nothing to steal credentials from
    tokens = need(options.get("httpTokens"), "metadataOptions", "httpTokens")
    if tokens != "required":
        report(f"metadataOptions.httpTokens is {tokens or 'unset'}; it must be required (IMDSv2 only)")
    hops = number(need(options.get("httpPutResponseHopLimit"), "metadataOptions", "httpPutResponseHopLimit"))
    if hops is None:
        return  # AWS default 1 (2 on AL2023 AMIs): both within the limit
    if hops > max_hops:
        report(f"metadataOptions.httpPutResponseHopLimit is {int(hops)}; at most {max_hops}, so that "
               "containers on bridge networks cannot reach the node's credentials")


imdsv2_required = resource_rule(
    name="imdsv2-required",
    resource_types=(LAUNCH_TEMPLATE, INSTANCE),
    description="Launch templates and instances require IMDSv2 (httpTokens: required) with a small hop limit.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_imdsv2_required,
    config_schema=PolicyConfigSchema(properties={
        "maxHopLimit": {"type": "integer", "minimum": 1, "maximum": 64, "default": 2,
                        "description": "Highest httpPutResponseHopLimit allowed. 1 keeps tokens on the host; "
                                       "2 lets processes in a container's network namespace one hop away "
                                       "(the swarm's own agents run with host networking, so 1 or 2 both work)."},
    }),
    remediation_steps="Set metadataOptions {httpEndpoint: enabled, httpTokens: required, "
                      "httpPutResponseHopLimit: 2} on the launch template.",
)

# --- disks-encrypted ----------------------------------------------------------------------------


def _disks_encrypted(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    kind = args.resource_type
    if kind == LAUNCH_TEMPLATE:
        mappings = need(props.get("blockDeviceMappings"), "blockDeviceMappings")
        if not mappings:
            report("blockDeviceMappings is empty, so the root volume's encryption is left to the AMI and "
                   "the account default; map the root device with ebs.encrypted: \"true\"")
            return
        for i, mapping in enumerate(as_list(mappings)):
            if not isinstance(mapping, dict) or mapping.get("virtualName") or mapping.get("noDevice"):
                continue
            ebs = mapping.get("ebs")
            encrypted = need(dig(ebs, "encrypted"), "blockDeviceMappings", i, "ebs", "encrypted")
            if not truthy(encrypted):
                report(f"blockDeviceMappings[{i}] ({mapping.get('deviceName', 'unnamed')}) is not encrypted; "
                       "set ebs.encrypted: \"true\"")
    elif kind == INSTANCE:
        root = props.get("rootBlockDevice")
        if not truthy(need(dig(root, "encrypted"), "rootBlockDevice", "encrypted")):
            report("rootBlockDevice.encrypted is not true")
        for i, device in enumerate(as_list(props.get("ebsBlockDevices"))):
            if not truthy(need(dig(device, "encrypted"), "ebsBlockDevices", i, "encrypted")):
                report(f"ebsBlockDevices[{i}] is not encrypted")
    elif kind == EBS_VOLUME:
        if not truthy(need(props.get("encrypted"), "encrypted")):
            report("encrypted is not true")
    elif kind in (SCALE_SET, AZURE_VM):
        profile = props.get("virtualMachineProfile") if kind == SCALE_SET else props
        prefix = "virtualMachineProfile." if kind == SCALE_SET else ""
        at_host = truthy(need(dig(profile, "securityProfile", "encryptionAtHost"),
                              f"{prefix}securityProfile", "encryptionAtHost"))
        if at_host:
            return
        disks = [("osDisk", dig(profile, "storageProfile", "osDisk"))]
        disks += [(f"dataDisks[{i}]", d) for i, d in enumerate(as_list(dig(profile, "storageProfile", "dataDisks")))]
        for name, disk in disks:
            if disk is None and name != "osDisk":
                continue
            encryption_set = dig(disk, "managedDisk", "diskEncryptionSet", "id")
            if not encryption_set:
                report(f"{prefix}storageProfile.{name} has neither encryption at host "
                       f"({prefix}securityProfile.encryptionAtHost) nor a disk encryption set")
    elif kind == AZURE_DISK and not dig(props, "encryption", "diskEncryptionSetId") and not truthy(
            dig(props, "encryptionSettingsCollection", "enabled")):
        report("the disk has no disk encryption set and no Azure Disk Encryption settings")


disks_encrypted = resource_rule(
    name="disks-encrypted",
    resource_types=(LAUNCH_TEMPLATE, INSTANCE, EBS_VOLUME, SCALE_SET, AZURE_VM, AZURE_DISK),
    description="Every node disk is encrypted: EBS volumes in launch templates, Azure encryption at host "
                "or a disk encryption set.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_disks_encrypted,
    remediation_steps="AWS: blockDeviceMappings[].ebs.encrypted: \"true\" (optionally kmsKeyId). Azure: "
                      "virtualMachineProfile.securityProfile.encryptionAtHost: true (register the "
                      "Microsoft.Compute/EncryptionAtHost feature) or a diskEncryptionSet on each disk.",
)

# --- user-data-no-secrets ----------------------------------------------------------------------

SECRET_PATTERNS = (
    (re.compile(r"SWMTKN-1-[0-9a-z]+"), "a swarm join token (SWMTKN-1-…)"),
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"), "a private key (-----BEGIN … PRIVATE KEY-----)"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id (AKIA…)"),
    (re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40}"), "an AWS secret access key"),
)


def _user_data_no_secrets(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    for path, value in user_data_fields(args.resource_type, props):
        if value is None or is_unknown(value):
            continue  # unknown in preview: it is checked again when it is known, at update
        text = decode_user_data(value)
        if text is None:
            continue
        for pattern, what in SECRET_PATTERNS:
            if pattern.search(text):
                report(f"{path} contains {what}; user data is readable by anyone who can describe the "
                       "instance or reach its metadata: fetch secrets at boot from SSM Parameter Store / "
                       "Key Vault instead")


user_data_no_secrets = resource_rule(
    name="user-data-no-secrets",
    resource_types=NODES_WITH_USER_DATA,
    description="User data carries no secret: no swarm join token, private key or AWS access key.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_user_data_no_secrets,
    remediation_steps="Put tokens and keys in SSM Parameter Store (SecureString) or Key Vault, and fetch "
                      "them at boot with the node's own identity.",
)

# --- azure-password-auth-disabled -----------------------------------------------------------------


def _azure_password_auth_disabled(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    prefix = "virtualMachineProfile.osProfile" if args.resource_type == SCALE_SET else "osProfile"
    os_profile = dig(props, *prefix.split("."))
    if os_profile is None:
        return  # a scale set attached to an existing profile / image: nothing to judge here
    if dig(os_profile, "windowsConfiguration") is not None:
        return  # Windows nodes are not built by swarmstack
    disabled = need(dig(os_profile, "linuxConfiguration", "disablePasswordAuthentication"),
                    prefix, "linuxConfiguration", "disablePasswordAuthentication")
    if not truthy(disabled):
        report(f"{prefix}.linuxConfiguration.disablePasswordAuthentication is not true; log in with an "
               "SSH key or Run Command only")
    if dig(os_profile, "adminPassword") not in (None, ""):
        report(f"{prefix}.adminPassword is set; remove it and use an SSH public key")


azure_password_auth_disabled = resource_rule(
    name="azure-password-auth-disabled",
    resource_types=(SCALE_SET, AZURE_VM),
    description="Azure scale sets and VMs have password authentication off.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_azure_password_auth_disabled,
    remediation_steps="Set osProfile.linuxConfiguration.disablePasswordAuthentication: true and give an "
                      "SSH public key (access.sshPublicKey), or none at all.",
)

# --- docker-api-tls-verify / docker-daemon-hardening ----------------------------------------------


def _daemon_settings(args: ResourceValidationArgs) -> Iterator[tuple[str, str, dict[str, Any] | None, str]]:
    """(user data property, file path, parsed daemon.json or None, raw text) of each daemon.json
    and dockerd drop-in the node's user data writes."""
    props = plain(args.props)
    for field, value in user_data_fields(args.resource_type, props):
        text = decode_user_data(value)
        if not text:
            continue
        for path, content in written_files(text):
            if path.endswith("daemon.json"):
                try:
                    parsed = json.loads(content)
                except json.JSONDecodeError:
                    parsed = None
                yield field, path, parsed if isinstance(parsed, dict) else None, content
            elif path.endswith(".conf") and "docker.service.d" in path:
                yield field, path, None, content


def _tcp_hosts(settings: dict[str, Any] | None, content: str) -> list[str]:
    hosts = [str(h) for h in as_list((settings or {}).get("hosts")) if str(h).startswith("tcp://")]
    if settings is None:  # a systemd drop-in: dockerd -H tcp://… / --host=tcp://…
        hosts += re.findall(r"(?:-H|--host)[ =](tcp://\S+)", content)
    return hosts


def _docker_api_tls_verify(args: ResourceValidationArgs, report: Report) -> None:
    for field, path, settings, content in _daemon_settings(args):
        for host in _tcp_hosts(settings, content):
            port = host.rsplit(":", 1)[-1].rstrip("/")
            verify = truthy((settings or {}).get("tlsverify")) or (settings is None and "--tlsverify" in content)
            if port == "2375":
                report(f"{field}: {path} makes dockerd listen on {host}, the plaintext Docker API port; "
                       "serve the API on 2376 with tlsverify")
            elif not verify:
                report(f"{field}: {path} makes dockerd listen on {host} without tlsverify, so anyone who reaches "
                       "the port controls the node; set \"tlsverify\": true with a CA")


docker_api_tls_verify = resource_rule(
    name="docker-api-tls-verify",
    resource_types=NODES_WITH_USER_DATA,
    description="When a node's dockerd listens on TCP, it is on 2376 with tlsverify (client certificates).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_docker_api_tls_verify,
    remediation_steps="In daemon.json: \"hosts\": [\"unix:///var/run/docker.sock\", \"tcp://0.0.0.0:2376\"], "
                      "\"tls\": true, \"tlsverify\": true and the CA, certificate and key paths "
                      "(dockerApi.enabled: true does all of it).",
)


def _docker_daemon_hardening(args: ResourceValidationArgs, report: Report) -> None:
    for field, path, settings, _ in _daemon_settings(args):
        if settings is None:
            continue
        if settings.get("no-new-privileges") is not True:
            report(f"{field}: {path} does not set \"no-new-privileges\": true (CIS Docker 2.14)")
        if settings.get("userland-proxy") is not False:
            report(f"{field}: {path} does not set \"userland-proxy\": false (CIS Docker 2.16)")
        if not settings.get("log-driver"):
            report(f"{field}: {path} sets no \"log-driver\"; send container logs to the cluster's log "
                   "service (CIS Docker 2.13)")


docker_daemon_hardening = resource_rule(
    name="docker-daemon-hardening",
    resource_types=NODES_WITH_USER_DATA,
    description="The daemon.json in user data sets no-new-privileges, turns the userland proxy off and names a "
                "log driver.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_docker_daemon_hardening,
    remediation_steps="Render daemon.json with \"no-new-privileges\": true, \"userland-proxy\": false and a "
                      "log driver (awslogs on AWS, syslog to the Azure Monitor agent on Azure).",
)

RESOURCE_POLICIES = [imdsv2_required, disks_encrypted, user_data_no_secrets, azure_password_auth_disabled,
                     docker_api_tls_verify, docker_daemon_hardening]
STACK_POLICIES: list = []
