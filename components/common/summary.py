"""What every cloud's Cluster says of itself: its tags and its summary. Pure."""

from __future__ import annotations

from typing import Any

from swarmstack.config.load import StackConfig
from swarmstack.config.tags import CLUSTER_TAG, STACK_TAG


def cluster_tags(settings: StackConfig) -> dict[str, str]:
    """Tags every resource carries: the user's, plus the cluster's own."""
    return {**settings.cluster.tags, CLUSTER_TAG: settings.cluster.name,
            STACK_TAG: settings.stack}


def cluster_summary(settings: StackConfig) -> dict[str, Any]:
    """What stack-level policies need to know of the cluster as a whole. The Cluster
    component registers these as its inputs and outputs, so a policy pack sees them
    under the real CLI as offline."""
    cfg = settings.cluster
    return {"cloud": cfg.cloud, "clusterName": cfg.name, "production": cfg.production,
            "managerCount": cfg.managers.count, "zones": cfg.zone_count,
            "dockerApi": cfg.docker_api.enabled, "pruneVolumes": cfg.prune.volumes,
            "pruneSchedule": cfg.prune.schedule, "logKms": cfg.logging.kms}
