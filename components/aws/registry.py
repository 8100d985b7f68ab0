"""The cluster's private registry on AWS: one ECR repository a configured name, under
`<cluster>/`, which the node roles may pull from and nothing else.

Each repository
- scans every image on push (ECR basic scanning);
- keeps its tags where they are when `immutableTags` is on (`IMMUTABLE`);
- is encrypted with the cluster's KMS key (SSE-KMS). ECR itself uses the key: when the
  repository is created it calls `DescribeKey` and creates grants on the key with the
  repository as grantee (as the deploying principal, which the key policy's account
  statement lets IAM allow), and decrypts layers through those grants when an image is
  pulled. A puller needs no `kms:` permission of its own (docs/registry.md quotes AWS);
- keeps the newest `keepImages` images, tagged or not: a lifecycle policy expires the rest.

Pulling needs `ecr:GetAuthorizationToken` (no resource type in the Service Authorization
Reference: `*` only; the token it returns is good for any repository the caller may read,
which is what the scoped actions decide) and, on the repository itself,
`ecr:BatchCheckLayerAvailability`, `ecr:GetDownloadUrlForLayer`, `ecr:BatchGetImage`.
`pull_statements` holds them; the node roles (`identity.py`) carry them, scoped to
`repository_arns`, which are known before the repositories exist (account, region, name).

The nodes pull without a stored password through the registry tool
(`userdata/templates/node/registry.sh.j2`): root's Docker CLI asks the tool, as the credential
helper `docker-credential-swarmstack`, and it asks ECR with the instance role; on the swarm's
leader it re-sends fresh credentials to the services of the registry every 30 minutes (the swarm
never refreshes the ones a service was deployed with, and ECR's last 12 hours). EC2's
16 KiB of user data are full, so one State Manager association (`AWS-RunShellScript`, the
document the node roles already run) writes the tool and runs it: when it is created, on
each instance that registers later, and every 30 minutes (`tool_script`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.common.node_paths import REGISTRY_TOOL
from userdata.params import RegistryTool
from userdata.render import REGISTRY_REFRESH_MINUTES, registry_tool

PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")
"""What pulling an image asks of the repository it is in."""
TOKEN_ACTION = "ecr:GetAuthorizationToken"
"""The registry login: `*` is the only resource it takes."""
SCHEDULE = f"rate({REGISTRY_REFRESH_MINUTES} minutes)"
"""How often State Manager runs the registry tool again (the Azure timer's period)."""
_EOF = "SWARMSTACK_REGISTRY_TOOL"


def repository_name(cluster: str, name: str) -> str:
    """The ECR name of a configured repository: the cluster's own namespace. Pure."""
    return f"{cluster}/{name}"


def repository_arn(partition: str, region: str, account: str, name: str) -> str:
    """A repository's ARN from its full ECR name (deterministic). Pure."""
    return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"


def registry_address(account: str, region: str) -> str:
    """The account's private registry in a region, as `docker login` and image names take it.
    Pure."""
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def pull_statements(repository_arns: list[str]) -> list[dict[str, Any]]:
    """What a node role needs to pull from exactly these repositories. Pure."""
    if not repository_arns:
        return []
    return [
        {"Sid": "RegistryLogin", "Effect": "Allow", "Action": TOKEN_ACTION, "Resource": "*"},
        {"Sid": "PullFromTheClusterRepositories", "Effect": "Allow", "Action": list(PULL_ACTIONS),
         "Resource": list(repository_arns)},
    ]


def tool_script(cluster: str, region: str, registry: str) -> str:
    """The script State Manager runs on every node: write the registry tool (atomically) and
    run `converge`. Pure."""
    tool = registry_tool(RegistryTool(cluster=cluster, cloud="aws", registry=registry, region=region))
    if f"\n{_EOF}\n" in f"\n{tool}":
        raise ValueError(f"the registry tool holds the line {_EOF}, which ends its heredoc")
    return "\n".join([
        "#!/bin/bash",
        "set -euo pipefail",
        f"tool={REGISTRY_TOOL}",
        'new=$(mktemp "$tool.XXXXXX")',
        "trap 'rm -f \"$new\"' EXIT",
        f"cat >\"$new\" <<'{_EOF}'",
        tool.rstrip("\n"),
        _EOF,
        'chmod 755 "$new"',
        'mv "$new" "$tool"',
        'exec "$tool" converge',
    ])


def lifecycle_policy(keep: int) -> dict[str, Any]:
    """Expire all but the newest `keep` images (tagged or not): one rule, `tagStatus: any`.
    Pure."""
    return {"rules": [{
        "rulePriority": 1,
        "description": f"keep the newest {keep} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"},
    }]}


@dataclass(frozen=True)
class RegistryArgs:
    """What the repositories need."""

    cluster: str
    """The cluster's name: the repositories' namespace."""
    repositories: list[str]
    """The configured names (`app`, `team/api`)."""
    immutable_tags: bool
    """`IMMUTABLE` tags: a pushed tag never moves."""
    keep_images: int
    """Images each repository keeps, newest first."""
    key_arn: pulumi.Input[str]
    """The cluster's KMS key: encrypts the images."""
    region: str
    """The stack's region (the registry's)."""
    production: bool
    """Production repositories keep their images on `pulumi destroy` (no force delete)."""
    tags: dict[str, str]
    """Tags for the repositories."""


class Registry(pulumi.ComponentResource):
    """ECR repositories, each scanned on push, under the cluster key, with a lifecycle policy,
    and the State Manager association that keeps the registry tool on every node."""

    address: pulumi.Output[str]
    """The registry host (`<account>.dkr.ecr.<region>.amazonaws.com`)."""
    urls: dict[str, pulumi.Output[str]]
    """Configured name → the repository's URL (what a service's `image:` names)."""
    arns: dict[str, pulumi.Output[str]]
    """Configured name → the repository's ARN."""

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.urls, self.arns = {}, {}
        policy = json.dumps(lifecycle_policy(args.keep_images))
        for repo in args.repositories:
            logical = f"{name}-{repo.replace('/', '--')}"  # '--' is never in a name: no clash
            repository = aws.ecr.Repository(
                logical, name=repository_name(args.cluster, repo),
                image_tag_mutability="IMMUTABLE" if args.immutable_tags else "MUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.key_arn}],
                force_delete=not args.production,
                tags={**args.tags, "Name": repository_name(args.cluster, repo)}, opts=child)
            aws.ecr.LifecyclePolicy(logical, repository=repository.name, policy=policy, opts=child)
            self.urls[repo] = repository.repository_url
            self.arns[repo] = repository.arn
        first = next(iter(self.urls.values()))
        self.address = first.apply(lambda url: url.split("/", 1)[0])
        aws.ssm.Association(
            f"{name}-tool", name="AWS-RunShellScript", association_name=f"swarmstack-{args.cluster}-registry",
            schedule_expression=SCHEDULE,
            targets=[{"key": "tag:swarmstack:cluster", "values": [args.cluster]}],
            parameters={"commands": self.address.apply(lambda host: tool_script(args.cluster, args.region, host)),
                        "executionTimeout": "600"},
            max_concurrency="100%", max_errors="100%", compliance_severity="MEDIUM", opts=child)
        self.register_outputs({"address": self.address, "urls": self.urls})
