"""The stack outputs: what `pulumi stack output` shows for a stack, on each cloud, and
when. One declaration an output (`OUTPUTS`), from which docs/outputs.md is generated:

    .venv/bin/python -m swarmstack.config.outputs > docs/outputs.md

tests/unit/test_outputs.py fails when docs/outputs.md is not what this prints, and when a
stack's real exports (the program's graph, offline) are not exactly `documented(cfg)`:
an output added, removed or renamed in `components/<cloud>/cluster.py` must be declared
here. Pure data, and a renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from swarmstack.config.model import ClusterConfig

CLOUDS = ("aws", "azure")
TITLES = {"aws": "AWS", "azure": "Azure"}


def always(_: ClusterConfig) -> bool:
    return True


@dataclass(frozen=True)
class StackOutput:
    """One stack output, as `pulumi stack output` names it."""

    name: str
    """The output's name (camelCase)."""
    clouds: tuple[str, ...]
    """The clouds whose stacks export it (`aws`, `azure`)."""
    description: str
    """What it holds and what to do with it (Markdown, one line)."""
    secret: bool = False
    """A Pulumi secret: shown only with `--show-secrets`."""
    when: str = ""
    """When the stack exports it, in the config's own keys (Markdown); empty: always."""
    exported: Callable[[ClusterConfig], bool] = always
    """`when`, as the program decides it."""


OUTPUTS: tuple[StackOutput, ...] = (
    # AWS
    StackOutput("vpcId", ("aws",), "The VPC the nodes are in: the one created, or `network.existing.vpcId`."),
    StackOutput("nodeSubnetIds", ("aws",),
                "The subnets the nodes run in, one a zone (a list): the private ones with a NAT, else the "
                "public ones; or `network.existing.subnetIds`."),
    StackOutput("managerShell", ("aws",),
                "A command that opens a Session Manager shell on a running manager (no SSH needed)."),
    StackOutput("logGroups", ("aws",),
                "The CloudWatch log groups by role: `containers`, `events`, `bootstrap`, `prune` "
                "(`/swarmstack/<name>/<role>`)."),
    StackOutput("dashboardUrl", ("aws",), "The cluster's CloudWatch dashboard in the console."),
    StackOutput("alarmTopicArn", ("aws",),
                "The SNS topic the alarms notify (`alarms.email`, `alarms.https` subscribe to it)."),
    StackOutput("securityGroupIds", ("aws",),
                "The security groups by role: `managers`, `workers`, and `loadBalancer` with a load balancer."),
    StackOutput("managerGroup", ("aws",), "The managers' Auto Scaling group."),
    StackOutput("workerGroups", ("aws",), "Each worker pool's Auto Scaling group, by pool name."),
    StackOutput("loadBalancerDns", ("aws",), "The network load balancer's DNS name: publish services here.",
                when="`loadBalancer.enabled`", exported=lambda c: c.load_balancer.enabled),
    StackOutput("backupStore", ("aws",), "Where the raft backups go: `s3://<bucket>`.",
                when="backups are on (`backup.enabled`; unset: `production`)", exported=lambda c: c.backup_enabled),
    StackOutput("dockerHost", ("aws",),
                "The TLS Docker API through the load balancer: `tcp://<dns>:2376` (`DOCKER_HOST`).",
                when="`dockerApi.enabled` and `loadBalancer.enabled`",
                exported=lambda c: c.docker_api.enabled and c.load_balancer.enabled),
    StackOutput("dockerTlsParameters", ("aws",),
                "The SSM parameters holding the CA certificate and the managers' server certificate and key.",
                when="`dockerApi.enabled`", exported=lambda c: c.docker_api.enabled),
    # Azure
    StackOutput("resourceGroup", ("azure",), "The resource group holding everything the stack creates."),
    StackOutput("vnetId", ("azure",), "The VNet the nodes are in: the one created, or `network.existing`'s."),
    StackOutput("nodeSubnetIds", ("azure",),
                "The subnets by role (`managers`, `workers`, `lb`): ARM ids."),
    StackOutput("nsgIds", ("azure",), "The network security groups by role: `managers`, `workers`."),
    StackOutput("keyVaultName", ("azure",),
                "The Key Vault holding the swarm's join tokens (and the Docker API certificates)."),
    StackOutput("backupStore", ("azure",), "Where the raft backups go: the blob container's URL.",
                when="backups are on (`backup.enabled`; unset: `production`)", exported=lambda c: c.backup_enabled),
    StackOutput("managerScaleSet", ("azure",), "The managers' scale set."),
    StackOutput("workerScaleSets", ("azure",), "Each worker pool's scale set, by pool name."),
    StackOutput("managerShell", ("azure",),
                "A command that runs `docker node ls` on a manager through Run Command (no SSH needed)."),
    StackOutput("loadBalancerAddress", ("azure",),
                "The load balancer's address: public, or private in the `lb` subnet.",
                when="`loadBalancer.enabled`", exported=lambda c: c.load_balancer.enabled),
    StackOutput("loadBalancerDns", ("azure",), "The public address's DNS name: publish services here.",
                when="`loadBalancer.enabled` and `loadBalancer.public`",
                exported=lambda c: c.load_balancer.enabled and c.load_balancer.public),
    StackOutput("dockerHost", ("azure",),
                "The TLS Docker API: `tcp://<dns or address>:2376` (`DOCKER_HOST`).",
                when="`dockerApi.enabled`", exported=lambda c: c.docker_api.enabled),
    StackOutput("logWorkspaceId", ("azure",), "The Log Analytics workspace the nodes' logs go to.",
                when="`logging.enabled`", exported=lambda c: c.logging.enabled),
    StackOutput("logWorkspaceCustomerId", ("azure",),
                "The Log Analytics workspace's customer id (what `az monitor log-analytics query --workspace` "
                "takes).",
                when="`logging.enabled`", exported=lambda c: c.logging.enabled),
    StackOutput("ssh", ("azure",), "A command that opens SSH to a manager's private address (over VPN or peering).",
                when="`access.sshPublicKey` is set", exported=lambda c: c.access.ssh_public_key is not None),
    # Both
    StackOutput("clientTls", CLOUDS,
                "The admin TLS bundle for the Docker API: `ca.pem`, `cert.pem`, `key.pem` "
                "(`swarmstack context STACK --outputs FILE` writes them and makes a docker context).",
                secret=True, when="`dockerApi.enabled`", exported=lambda c: c.docker_api.enabled),
    StackOutput("registry", CLOUDS,
                "The private registry's address (AWS: `<account>.dkr.ecr.<region>.amazonaws.com`; Azure: "
                "`<name>.azurecr.io`); see docs/registry.md.",
                when="`registry.enabled`", exported=lambda c: c.registry.enabled),
    StackOutput("registryRepositories", CLOUDS,
                "Each listed repository's full image address (`registry.repositories` name → address).",
                when="`registry.enabled`", exported=lambda c: c.registry.enabled),
    StackOutput("sharedVolumes", CLOUDS,
                "The NFS file system Docker's `local` driver mounts (AWS: `fileSystemId`, `address`, `device`; "
                "Azure: `account`, `address`, `device`) and the exact `volumeCreate` command; "
                "see docs/volumes.md.",
                when="`sharedVolumes.enabled`", exported=lambda c: c.shared_volumes.enabled),
)


def documented(cfg: ClusterConfig) -> dict[str, StackOutput]:
    """The outputs a stack with `cfg` exports, by name."""
    return {o.name: o for o in OUTPUTS if cfg.cloud in o.clouds and o.exported(cfg)}


HEADER = """# Stack outputs

Generated from `swarmstack/config/outputs.py` by `python -m swarmstack.config.outputs`; do
not edit by hand. `pulumi stack output` lists them (`--json` for all, `--show-secrets` for
the secret ones); `swarmstack plan STACK` shows them offline. A unit test checks that every
shipped and example stack exports exactly the outputs listed here for its cloud and config.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference() -> str:
    """docs/outputs.md: a table a cloud."""
    parts = [HEADER]
    for cloud in CLOUDS:
        parts.append(f"## {TITLES[cloud]}\n")
        parts.append("| output | secret | exported | what it is |\n| --- | --- | --- | --- |")
        for o in sorted((o for o in OUTPUTS if cloud in o.clouds), key=lambda o: o.name.lower()):
            parts.append(f"| `{o.name}` | {'yes' if o.secret else ''} | {_cell(o.when) or 'always'} "
                         f"| {_cell(o.description)} |")
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
