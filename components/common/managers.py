"""The manager group as both clouds build it: its pool name, its size and its raft
quorum, computed once from the typed config and passed down. Pure.

The pool name is a config fact (`swarmstack/config/model.py`: the config refuses a worker
pool of that name); the node script reads it too (`userdata/`: a node whose pool is
`MANAGER_POOL` is a manager).
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmstack.config.model import MANAGER_POOL, ClusterConfig

__all__ = ["MANAGER_POOL", "ManagerPlan", "manager_plan", "quorum"]


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
