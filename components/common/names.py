"""Physical names the clouds accept. Pure.

Pulumi names a resource without an explicit name `<logical name>-<7 random
characters>` and fails (it does not shorten) when that exceeds the provider's limit:
an NLB or target group takes 32 characters, so a cluster name over about 12
characters would break `pulumi preview`. Every AWS resource of the program therefore
gets an explicit physical name from `fit`: the readable name when it fits, otherwise
its start and a short hash of the whole, so two long names never collide and the
same name always comes out the same. Logical (Pulumi) names are never changed: that
would replace real servers.
"""

from __future__ import annotations

import hashlib
import re

HASH_LENGTH = 6

KEY_VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
"""An Azure Key Vault's name (the program makes it, the node script reads it): 3 to 24
characters, letters, digits and single dashes, starting with a letter, not ending with a dash."""

LIMITS: dict[str, int] = {
    "lb": 32,               # elbv2 load balancer and target group names
    "asg": 255,             # auto scaling group
    "launch-template": 128,
    "iam-role": 64,
    "iam-instance-profile": 128,
    "iam-policy": 128,      # inline role policy names
    "security-group": 255,
    "sns-topic": 256,
    "alarm": 255,
    "dashboard": 255,
    "log-group": 512,
    "kms-alias": 256,
    "s3-bucket": 63,
    "ssm-association": 128,
    "schedule": 64,         # EventBridge Scheduler schedule
}
"""Longest name AWS accepts, by kind."""


def fit(name: str, limit: int, lowercase: bool = False) -> str:
    """`name` if it is at most `limit` characters, else its start, a dash and 6 hex
    characters of its SHA-256, `limit` characters in all. Pure and deterministic."""
    if lowercase:
        name = name.lower()
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_LENGTH]
    head = name[: limit - HASH_LENGTH - 1].rstrip("-.")
    return f"{head}-{digest}"


def lb_name(name: str) -> str:
    """An elbv2 load balancer or target group name: 1 to 32 letters, digits and inner
    hyphens, not starting with `internal-`."""
    cleaned = re.sub(r"[^A-Za-z0-9-]", "-", name).strip("-")
    if cleaned.startswith("internal-"):
        cleaned = "lb-" + cleaned
    return fit(cleaned, LIMITS["lb"])


def bucket_name(name: str) -> str:
    """An S3 bucket name: 3 to 63 lowercase letters, digits and inner hyphens."""
    cleaned = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")
    return fit(cleaned, LIMITS["s3-bucket"])
