"""The whole swarm on AWS: wires network, firewalls, identity, nodes, load balancer,
TLS, logs and maintenance, and exports what a person needs."""

from __future__ import annotations

from typing import Any

import pulumi

from components.aws.network import ExistingNetworkArgs, Network, NewNetworkArgs
from swarmstack.config.load import StackConfig


def cluster_tags(settings: StackConfig) -> dict[str, str]:
    """Tags every resource carries: the user's, plus the cluster's own."""
    return {**settings.cluster.tags, "swarmstack:cluster": settings.cluster.name,
            "swarmstack:stack": settings.stack}


def network_args(settings: StackConfig) -> NewNetworkArgs | ExistingNetworkArgs:
    cfg = settings.cluster
    if cfg.network.existing is not None:
        e = cfg.network.existing
        return ExistingNetworkArgs(vpc_id=e.network_id, private_subnet_ids=list(e.private_subnet_ids),
                                   public_subnet_ids=list(e.public_subnet_ids))
    n = cfg.network.new
    assert n is not None
    return NewNetworkArgs(cidr=n.cidr, zones=n.zones, nat=n.nat, flow_logs=n.flow_logs,
                          flow_log_retention_days=cfg.logging.retention_days, tags=cluster_tags(settings))


def cluster_summary(settings: StackConfig) -> dict[str, Any]:
    """What stack-level policies need to know of the cluster as a whole. The Cluster
    component registers these as its inputs, so a policy pack sees them in preview."""
    cfg = settings.cluster
    return {"cloud": cfg.cloud, "clusterName": cfg.name, "production": cfg.production,
            "managerCount": cfg.managers.count, "zones": cfg.zone_count,
            "dockerApi": cfg.docker_api.enabled, "pruneVolumes": cfg.prune.volumes,
            "pruneSchedule": cfg.prune.schedule, "logKms": cfg.logging.kms}


class Cluster(pulumi.ComponentResource):
    """A self-forming Docker Swarm on AWS."""

    exports: dict[str, Any]

    def __init__(self, name: str, settings: StackConfig, ca_key: pulumi.Output[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:Cluster", name, cluster_summary(settings), opts)
        child = pulumi.ResourceOptions(parent=self)
        network = Network(f"{name}", network_args(settings), opts=child)
        self.exports = {"vpcId": network.vpc_id, "nodeSubnetIds": network.node_subnet_ids}
        self.register_outputs(self.exports)
