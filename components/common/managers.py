"""The manager group as both clouds build it: its pool name, its size and its raft
quorum, computed once from the typed config and passed down. Pure.

The node script reads the pool name too (`userdata/`: a node whose pool is
`MANAGER_POOL` is a manager, and no worker pool may take it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swarmstack.config.model import ClusterConfig

MANAGER_POOL = "managers"
"""The managers' pool name: their node group's name (`<cluster>-managers`), their label."""


def quorum(managers: int) -> int:
    """Raft's majority of `managers`: how many must be up for the swarm to act."""
    return managers // 2 + 1


@dataclass(frozen=True)
class ManagerPlan:
    """What the clusters need to know of the managers."""

    pool: str
    """The pool name (`MANAGER_POOL`)."""
    count: int
    """How many managers the swarm should have (`managers.count`)."""
    quorum: int
    """Raft's majority of `count`: the alarms fire below it."""


def manager_plan(cfg: ClusterConfig) -> ManagerPlan:
    """The manager group of `cfg`."""
    count = cfg.managers.count
    return ManagerPlan(pool=MANAGER_POOL, count=count, quorum=quorum(count))
