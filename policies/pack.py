"""Every rule of the pack, in the order they are reported. Importing this builds the
rule objects only; `__main__.py` is what serves them to the Pulumi CLI."""

from __future__ import annotations

from pulumi_policy import Policy

from . import firewall, identity, maintenance, nodes, observability, quorum, registry, stores, summary, volumes

PACK_NAME = "swarmstack"
PACK_VERSION = "0.1.0"
"""Keep equal to `version` in PulumiPolicy.yaml (a test checks)."""

_MODULES = (firewall, nodes, quorum, observability, identity, stores, registry, maintenance, summary, volumes)

RESOURCE_POLICIES = [p for m in _MODULES for p in m.RESOURCE_POLICIES]
STACK_POLICIES = [p for m in _MODULES for p in m.STACK_POLICIES]
POLICIES: list[Policy] = [*RESOURCE_POLICIES, *STACK_POLICIES]
BY_NAME: dict[str, Policy] = {p.name: p for p in POLICIES}

# Scanner ids of the same check, for docs/policies.md (a test keeps the two in step).
SCANNER_EQUIVALENTS: dict[str, str] = {
    "no-plaintext-docker-api": "none (CIS Docker 2.7 asks for TLS)",
    "docker-tls-api-not-public": "none",
    "swarm-ports-internal-only": "none (CIS Docker 7.2)",
    "ssh-rdp-not-public": "CKV_AWS_24, AWS-0107, CKV_AZURE_10, CKV_AZURE_9",
    "no-all-ports-to-world": "CKV_AWS_277",
    "default-security-group-closed": "CKV2_AWS_12",
    "imdsv2-required": "CKV_AWS_79, AWS-0028/AWS-0130, CKV_AWS_341",
    "disks-encrypted": "CKV_AWS_3, CKV_AWS_8, AWS-0131, CKV_AZURE_2, CKV_AZURE_97",
    "user-data-no-secrets": "CKV_AWS_46, AWS-0029",
    "azure-password-auth-disabled": "CKV_AZURE_49",
    "docker-api-tls-verify": "none (CIS Docker 2.7)",
    "docker-daemon-hardening": "none (CIS Docker 2.13, 2.14, 2.16)",
    "log-retention-set": "CKV_AWS_66 (CKV_AWS_338 with minimumDays: 365)",
    "iam-no-wildcards": "CKV_AWS_1, CKV_AWS_62, CKV_AWS_63, CKV_AWS_355",
    "prune-at-most-hourly": "none",
    "ssm-secrets-secure-string": "none",
    "key-vault-recoverable": "CKV_AZURE_42, CKV_AZURE_110",
    "registry-scan-on-push": "CKV_AWS_163, AVD-AWS-0030",
    "registry-encrypted-with-customer-key": "CKV_AWS_136, AVD-AWS-0033",
    "registry-tags-immutable": "CKV_AWS_51, AVD-AWS-0031",
    "acr-no-admin-user-or-anonymous-pull": "CKV_AZURE_137, CKV_AZURE_138",
    "docker-tls-api-only-when-enabled": "none",
    "swarm-ports-from-nodes-only": "none",
    "esp-between-nodes": "none (CIS Docker 7.3)",
    "manager-count-odd": "none",
    "managers-spread-over-zones": "none",
    "managers-on-demand": "none",
    "single-manager-not-production": "none",
    "log-groups-encrypted": "CKV_AWS_158",
    "load-balancer-deletion-protection": "CKV_AWS_150",
    "load-balancer-access-logs": "CKV_AWS_91",
    "vpc-flow-logs": "CKV2_AWS_11",
    "prune-volumes-opt-in": "none",
    "cluster-summary-visible": "none",
    "node-roles-least-privilege": "none (scanners judge one document at a time, not what a role holds)",
}
SCANNER_EQUIVALENTS.update(volumes.SCANNER_EQUIVALENTS)
