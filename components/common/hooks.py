"""The auto scaling lifecycle hooks of every AWS node group, in one place: the program
creates them (`components/aws/nodes.py`) and the node script completes them
(`userdata/`), so both read the names and timings from here. Pure.

- `swarmstack-join` (`EC2_INSTANCE_LAUNCHING`, default ABANDON): a new node is
  InService only once it has joined the swarm (a manager: Reachable); the node
  completes it with CONTINUE. A node that never joins is abandoned (terminated) when
  the heartbeat runs out, so an instance refresh with a broken image stops there,
  quorum intact.
- `swarmstack-drain` (`EC2_INSTANCE_TERMINATING`, default CONTINUE): a leaving node
  drains (a manager also demotes) and leaves, then completes it; a dead node never
  blocks its own replacement.
"""

from __future__ import annotations

from typing import Literal

JOIN_HOOK = "swarmstack-join"
DRAIN_HOOK = "swarmstack-drain"

CONVERGE_DEADLINE = 900
"""Seconds a booting node tries to converge before it marks itself unhealthy (the node
script's bound)."""
JOIN_HEARTBEAT = 1200
"""Seconds a new node has to join before Auto Scaling abandons it: the node's own
15-minute bound plus 5 minutes, so that a slow but healthy node (packages installed
from scratch, a worker waiting for the first manager to init) is never abandoned
before it has given up itself, and one that gave up is replaced soon after."""
DRAIN_HEARTBEAT: dict[Literal["manager", "worker"], int] = {"manager": 900, "worker": 600}
"""Seconds a leaving node has to drain (and, for a manager, be demoted) before AWS goes on."""
TERMINATION_MARGIN = 300
"""Seconds an instance may take to shut down once its drain hook is completed."""


def group_delete_timeout(role: Literal["manager", "worker"]) -> int:
    """Seconds `pulumi destroy` must wait for a group to empty: every node drains at once,
    each for up to its heartbeat, then shuts down. Pure."""
    return DRAIN_HEARTBEAT[role] + TERMINATION_MARGIN


HEALTH_PORT = 8585
"""Azure: the loopback port where a node tells the Application Health extension (Rich
Health States) its health: `Healthy` once it has joined, `Unhealthy` when it could not
within CONVERGE_DEADLINE (the scale set's automatic repairs then replace it)."""
HEALTH_PATH = "/health.json"
REPAIR_GRACE = "PT30M"
"""How long automatic repairs leave a machine alone after it changed state (boot, reimage):
longer than CONVERGE_DEADLINE, so only a node that said so itself is ever repaired."""
