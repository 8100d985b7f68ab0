"""Node rules: IMDSv2, disk encryption, secrets in user data, Azure password logins."""

from __future__ import annotations

import base64
import copy
import gzip
from typing import Any

import pytest
from policy_testing import b64, messages, resource

from policies import nodes

LT = "aws:ec2/launchTemplate:LaunchTemplate"
VMSS = "azure-native:compute:VirtualMachineScaleSet"


def template(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "namePrefix": "prod-managers-",
        "imageId": "ami-0123456789abcdef0",
        "instanceType": "m6i.large",
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 2.0},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda",
                                 "ebs": {"encrypted": "true", "volumeSize": 50.0, "volumeType": "gp3",
                                         "deleteOnTermination": "true"}}],
        "userData": b64("#cloud-config\nruncmd:\n  - [/usr/local/sbin/swarmstack-node, install]\n"),
        "tags": {"swarmstack:role": "manager"},
    }
    props.update(changes)
    return props


def scale_set(**profile_changes: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "osProfile": {"computerNamePrefix": "mgr", "adminUsername": "swarm",
                      "customData": b64("#cloud-config\n"),
                      "linuxConfiguration": {"disablePasswordAuthentication": True,
                                             "ssh": {"publicKeys": []}}},
        "securityProfile": {"encryptionAtHost": True},
        "storageProfile": {"osDisk": {"createOption": "FromImage",
                                      "managedDisk": {"storageAccountType": "Premium_LRS"}}},
        "priority": "Regular",
    }
    profile.update(profile_changes)
    return {"resourceGroupName": "rg", "sku": {"name": "Standard_D2s_v5", "capacity": 3.0},
            "zones": ["1", "2", "3"], "tags": {"swarmstack:role": "manager"}, "virtualMachineProfile": profile}


# --- imdsv2-required ------------------------------------------------------------------------------

def test_imdsv2_passes() -> None:
    assert messages(nodes.imdsv2_required, resource(LT, "lt", template())) == []
    assert messages(nodes.imdsv2_required, resource(LT, "off", template(
        metadataOptions={"httpEndpoint": "disabled"}))) == []


@pytest.mark.parametrize(("options", "message"), [
    ({"httpEndpoint": "enabled", "httpTokens": "optional", "httpPutResponseHopLimit": 2.0},
     "metadataOptions.httpTokens is optional; it must be required (IMDSv2 only)"),
    ({"httpEndpoint": "enabled", "httpPutResponseHopLimit": 1.0},
     "metadataOptions.httpTokens is unset; it must be required (IMDSv2 only)"),
    ({"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 3.0},
     "metadataOptions.httpPutResponseHopLimit is 3; at most 2, so that containers on bridge networks cannot "
     "reach the node's credentials"),
    (None, "metadataOptions is not set, so IMDSv1 stays on: set httpTokens: required and "
           "httpPutResponseHopLimit: 1 to 2"),
])
def test_imdsv2_breaks(options: dict[str, Any] | None, message: str) -> None:
    props = template(metadataOptions=options)
    if options is None:
        del props["metadataOptions"]
    assert messages(nodes.imdsv2_required, resource(LT, "lt", props)) == [message]


def test_imdsv2_hop_limit_is_configurable() -> None:
    assert messages(nodes.imdsv2_required, resource(LT, "lt", template()), config={
        "imdsv2-required": {"maxHopLimit": 1}}) == [
        "metadataOptions.httpPutResponseHopLimit is 2; at most 1, so that containers on bridge networks cannot "
        "reach the node's credentials"]


# --- disks-encrypted ---------------------------------------------------------------------------------

def test_disks_encrypted_passes() -> None:
    assert messages(nodes.disks_encrypted, resource(LT, "lt", template())) == []
    assert messages(nodes.disks_encrypted, resource(VMSS, "vmss", scale_set())) == []
    with_set = scale_set(securityProfile={}, storageProfile={"osDisk": {"managedDisk": {
        "diskEncryptionSet": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
                                    "diskEncryptionSets/des"}}}})
    assert messages(nodes.disks_encrypted, resource(VMSS, "vmss", with_set)) == []


def test_disks_encrypted_breaks_on_aws() -> None:
    props = template()
    props["blockDeviceMappings"][0]["ebs"]["encrypted"] = "false"
    assert messages(nodes.disks_encrypted, resource(LT, "lt", props)) == [
        "blockDeviceMappings[0] (/dev/xvda) is not encrypted; set ebs.encrypted: \"true\""]
    del props["blockDeviceMappings"][0]["ebs"]["encrypted"]
    assert messages(nodes.disks_encrypted, resource(LT, "lt", props)) == [
        "blockDeviceMappings[0] (/dev/xvda) is not encrypted; set ebs.encrypted: \"true\""]
    assert messages(nodes.disks_encrypted, resource(LT, "lt", template(blockDeviceMappings=[]))) == [
        "blockDeviceMappings is empty, so the root volume's encryption is left to the AMI and the account "
        "default; map the root device with ebs.encrypted: \"true\""]
    assert messages(nodes.disks_encrypted, resource("aws:ebs/volume:Volume", "v", {"size": 10.0})) == [
        "encrypted is not true"]


def test_disks_encrypted_breaks_on_azure() -> None:
    props = scale_set(securityProfile={"encryptionAtHost": False})
    assert messages(nodes.disks_encrypted, resource(VMSS, "vmss", props)) == [
        "virtualMachineProfile.storageProfile.osDisk has neither encryption at host "
        "(virtualMachineProfile.securityProfile.encryptionAtHost) nor a disk encryption set"]


# --- user-data-no-secrets ---------------------------------------------------------------------------

TOKEN = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"


def test_user_data_without_secrets_passes() -> None:
    assert messages(nodes.user_data_no_secrets, resource(LT, "lt", template())) == []
    assert messages(nodes.user_data_no_secrets, resource(VMSS, "vmss", scale_set())) == []


@pytest.mark.parametrize(("secret", "what"), [
    (f"docker swarm join --token {TOKEN} 10.0.0.1:2377", "a swarm join token (SWMTKN-1-…)"),
    (KEY, "a private key (-----BEGIN … PRIVATE KEY-----)"),
    (f"export AWS_ACCESS_KEY_ID={ACCESS_KEY}", "an AWS access key id (AKIA…)"),
])
def test_user_data_with_a_secret_is_refused(secret: str, what: str) -> None:
    script = f"#!/bin/bash\nset -euo pipefail\n{secret}\n"
    expected = (f"contains {what}; user data is readable by anyone who can describe the instance or reach its "
                "metadata: fetch secrets at boot from SSM Parameter Store / Key Vault instead")
    assert messages(nodes.user_data_no_secrets, resource(LT, "lt", template(userData=b64(script)))) == [
        f"userData {expected}"]
    gzipped = base64.b64encode(gzip.compress(script.encode())).decode()
    assert messages(nodes.user_data_no_secrets, resource(LT, "lt", template(userData=gzipped))) == [
        f"userData {expected}"]
    props = scale_set()
    props["virtualMachineProfile"]["osProfile"]["customData"] = b64(script)
    assert messages(nodes.user_data_no_secrets, resource(VMSS, "vmss", props)) == [
        f"virtualMachineProfile.osProfile.customData {expected}"]
    plain_instance = resource("aws:ec2/instance:Instance", "i", {"userData": script})
    assert messages(nodes.user_data_no_secrets, plain_instance) == [f"userData {expected}"]


# --- azure-password-auth-disabled ----------------------------------------------------------------------

def test_password_auth_disabled_passes() -> None:
    assert messages(nodes.azure_password_auth_disabled, resource(VMSS, "vmss", scale_set())) == []


def test_password_auth_breaks() -> None:
    props = scale_set()
    props["virtualMachineProfile"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] = False
    assert messages(nodes.azure_password_auth_disabled, resource(VMSS, "vmss", props)) == [
        "virtualMachineProfile.osProfile.linuxConfiguration.disablePasswordAuthentication is not true; log in with "
        "an SSH key or Run Command only"]
    unset = copy.deepcopy(props)
    del unset["virtualMachineProfile"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"]
    assert messages(nodes.azure_password_auth_disabled, resource(VMSS, "vmss", unset)) == [
        "virtualMachineProfile.osProfile.linuxConfiguration.disablePasswordAuthentication is not true; log in with "
        "an SSH key or Run Command only"]
    password = scale_set()
    password["virtualMachineProfile"]["osProfile"]["adminPassword"] = "hunter2hunter2!"
    assert messages(nodes.azure_password_auth_disabled, resource(VMSS, "vmss", password)) == [
        "virtualMachineProfile.osProfile.adminPassword is set; remove it and use an SSH public key"]


# --- docker-api-tls-verify / docker-daemon-hardening ---------------------------------------------------

DAEMON = {"log-driver": "awslogs", "no-new-privileges": True, "userland-proxy": False,
          "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "tls": True, "tlsverify": True,
          "tlscacert": "/etc/docker/tls/ca.pem", "labels": []}


def cloud_config_with(daemon: dict[str, Any], drop_in: str = "") -> str:
    import json
    import textwrap

    body = textwrap.indent(json.dumps(daemon, indent=2), "      ")
    text = f"#cloud-config\nwrite_files:\n  - path: /etc/swarmstack/daemon.json\n    content: |\n{body}\n"
    if drop_in:
        text += ("  - path: /etc/systemd/system/docker.service.d/api.conf\n    content: |\n"
                 + textwrap.indent(drop_in, "      ") + "\n")
    return text


def test_daemon_settings_pass() -> None:
    lt = resource(LT, "lt", template(userData=b64(cloud_config_with(DAEMON))))
    assert messages(nodes.docker_api_tls_verify, lt) == []
    assert messages(nodes.docker_daemon_hardening, lt) == []
    local_only = {k: v for k, v in DAEMON.items() if k not in ("hosts", "tls", "tlsverify", "tlscacert")}
    assert messages(nodes.docker_api_tls_verify, resource(LT, "lt", template(
        userData=b64(cloud_config_with(local_only))))) == []


def test_daemon_listening_without_tls_verify_is_refused() -> None:
    no_verify = {**DAEMON, "tlsverify": False}
    assert messages(nodes.docker_api_tls_verify, resource(LT, "lt", template(
        userData=b64(cloud_config_with(no_verify))))) == [
        "userData: /etc/swarmstack/daemon.json makes dockerd listen on tcp://0.0.0.0:2376 without tlsverify, so "
        "anyone who reaches the port controls the node; set \"tlsverify\": true with a CA"]
    plaintext = {**DAEMON, "hosts": ["tcp://0.0.0.0:2375"]}
    assert messages(nodes.docker_api_tls_verify, resource(LT, "lt", template(
        userData=b64(cloud_config_with(plaintext))))) == [
        "userData: /etc/swarmstack/daemon.json makes dockerd listen on tcp://0.0.0.0:2375, the plaintext Docker "
        "API port; serve the API on 2376 with tlsverify"]
    drop_in = "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// -H tcp://0.0.0.0:2376"
    local_only = {k: v for k, v in DAEMON.items() if k not in ("hosts", "tls", "tlsverify", "tlscacert")}
    assert messages(nodes.docker_api_tls_verify, resource(LT, "lt", template(
        userData=b64(cloud_config_with(local_only, drop_in))))) == [
        "userData: /etc/systemd/system/docker.service.d/api.conf makes dockerd listen on tcp://0.0.0.0:2376 without "
        "tlsverify, so anyone who reaches the port controls the node; set \"tlsverify\": true with a CA"]
    heredoc = "#!/bin/bash\ncat > /etc/docker/daemon.json <<'EOF'\n{\"hosts\": [\"tcp://0.0.0.0:2376\"]}\nEOF\n"
    assert messages(nodes.docker_api_tls_verify, resource(LT, "lt", template(userData=b64(heredoc)))) == [
        "userData: /etc/docker/daemon.json makes dockerd listen on tcp://0.0.0.0:2376 without tlsverify, so anyone "
        "who reaches the port controls the node; set \"tlsverify\": true with a CA"]


def test_daemon_hardening_breaks() -> None:
    for key, value, message in (
        ("no-new-privileges", False, "does not set \"no-new-privileges\": true (CIS Docker 2.14)"),
        ("userland-proxy", True, "does not set \"userland-proxy\": false (CIS Docker 2.16)"),
        ("log-driver", "", "sets no \"log-driver\"; send container logs to the cluster's log service "
                           "(CIS Docker 2.13)"),
    ):
        props = template(userData=b64(cloud_config_with({**DAEMON, key: value})))
        assert messages(nodes.docker_daemon_hardening, resource(LT, "lt", props)) == [
            f"userData: /etc/swarmstack/daemon.json {message}"]
