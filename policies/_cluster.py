"""The cluster as the rules see it: the Cluster component's summary, tags and roles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._props import as_list, number, plain, truthy

CLUSTER_TYPES = ("swarmstack:aws:Cluster", "swarmstack:azure:Cluster")
SUMMARY_KEYS = ("cloud", "clusterName", "production", "managerCount", "zones", "dockerApi",
                "pruneVolumes", "pruneSchedule", "logKms")
ROLE_TAG = "swarmstack:role"


@dataclass(frozen=True)
class Summary:
    """The `swarmstack:<cloud>:Cluster` component's summary props."""

    urn: str
    cloud: str
    production: bool
    manager_count: int | None
    zones: int | None
    docker_api: bool
    prune_volumes: bool
    prune_schedule: str | None
    log_kms: bool

    @staticmethod
    def from_props(urn: str, props: dict[str, Any]) -> Summary:
        count, zones = number(props.get("managerCount")), number(props.get("zones"))
        return Summary(
            urn=urn,
            cloud=str(props.get("cloud", "")),
            production=truthy(props.get("production")),
            manager_count=int(count) if count is not None else None,
            zones=int(zones) if zones is not None else None,
            docker_api=truthy(props.get("dockerApi")),
            prune_volumes=truthy(props.get("pruneVolumes")),
            prune_schedule=props.get("pruneSchedule") if isinstance(props.get("pruneSchedule"), str) else None,
            log_kms=truthy(props.get("logKms")),
        )


def summaries(resources: Sequence[Any]) -> list[Summary]:
    """Every cluster summary a stack policy can see (in the resources' props)."""
    found = []
    for resource in resources:
        if resource.resource_type in CLUSTER_TYPES:
            props = plain(resource.props)
            if all(key in props for key in ("production", "managerCount")):
                found.append(Summary.from_props(resource.urn, props))
    return found


def tags_of(resource_type: str, props: dict[str, Any]) -> dict[str, str]:
    """Tags as a plain mapping, whatever shape the resource type keeps them in."""
    tags: dict[str, str] = {}
    raw = props.get("tags")
    if isinstance(raw, dict):
        tags.update({k: v for k, v in raw.items() if isinstance(v, str)})
    elif isinstance(raw, list):  # autoscaling group: [{key, value, propagateAtLaunch}]
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("value"), str):
                tags[item["key"]] = item["value"]
    for spec in as_list(props.get("tagSpecifications")):  # launch template
        if isinstance(spec, dict) and isinstance(spec.get("tags"), dict):
            tags.update({k: v for k, v in spec["tags"].items() if isinstance(v, str)})
    return tags


