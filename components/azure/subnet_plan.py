"""How a new VNet's address space is shared between managers, workers and the load balancer. Pure.

Azure subnets span every zone of a region, so unlike AWS there is one subnet per role,
not one per zone; the scale sets spread their machines over zones themselves.
"""

from __future__ import annotations

from components.common.cidr import split

ROLES = ("managers", "workers", "lb")


def subnet_plan(cidr: str) -> dict[str, str]:
    """`{"managers": …, "workers": …, "lb": …}`: the first three quarters of `cidr`.

    The fourth quarter stays free for whatever the user adds later (a bastion, a
    gateway). Raises ValueError when `cidr` is too small to cut.
    """
    return dict(zip(ROLES, split(cidr, len(ROLES)), strict=True))
