"""Builders for the policy pack's tests (they live with the tests, not in the pack): resources shaped as the engine hands them to a policy
(camelCase inputs, outputs = inputs + computed values), and a one-call way to run rules."""

from __future__ import annotations

import base64
import copy
import itertools
from typing import Any

from pulumi_policy import Policy

from swarmstack.engine.graph import Graph, Resource

_ids = itertools.count(1)


def resource(type_: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None,
             custom: bool = True, parent: str = "", stack: str = "test") -> Resource:
    """A recorded resource; custom ones get an id and echo their inputs as outputs."""
    urn = f"urn:pulumi:{stack}::swarmstack::{type_}::{name}"
    if not custom:
        return Resource(urn, type_, name, parent, False, copy.deepcopy(inputs), copy.deepcopy(outputs or {}), "")
    rid = f"{type_.rsplit(':', 1)[-1].lower()}-{next(_ids):08x}"
    out = {**copy.deepcopy(inputs), "id": rid, **(outputs or {})}
    return Resource(urn, type_, name, parent, True, copy.deepcopy(inputs), out, rid)


def graph(*resources: Resource, stack: str = "test", cloud: str = "aws") -> Graph:
    return Graph(stack=stack, cloud=cloud, resources=list(resources))


def messages(policy: Policy, *resources: Resource, config: dict[str, Any] | None = None,
             preview: bool = False) -> list[str]:
    """The messages `policy` reports on a stack of `resources`."""
    from swarmstack.policy import evaluate

    found = evaluate(graph(*resources), config, preview=preview, policies=[policy])
    return [f.message for f in found]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def summary(production: bool = True, manager_count: int = 3, zones: int = 3, docker_api: bool = True,
            prune_volumes: bool = False, prune_schedule: str = "42 1 * * *", log_kms: bool = False,
            cloud: str = "aws", register_outputs: bool = True) -> Resource:
    """The Cluster component with its summary, registered as inputs and (like the real
    component should) as outputs too. Numbers are floats, as they cross the wire."""
    props = {"cloud": cloud, "clusterName": "prod", "production": production, "managerCount": float(manager_count),
             "zones": float(zones), "dockerApi": docker_api, "pruneVolumes": prune_volumes,
             "pruneSchedule": prune_schedule, "logKms": log_kms}
    return resource(f"swarmstack:{cloud}:Cluster", "prod", props, props if register_outputs else {}, custom=False)
