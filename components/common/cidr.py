"""Cutting a network's address space into equal subnets. Pure."""

from __future__ import annotations

import ipaddress
import math


def split(cidr: str, count: int) -> list[str]:
    """The first `count` subnets of `cidr` when cut into the fewest equal power-of-two parts.

    `split("10.20.0.0/16", 6)` gives eight /19s and returns the first six. Subnets
    never overlap and always lie inside `cidr`; raises ValueError when `cidr` is too
    small to give `count` subnets of at least /28 (AWS's smallest subnet).
    """
    if count < 1:
        raise ValueError(f"need at least one subnet, got {count}")
    network = ipaddress.IPv4Network(cidr, strict=True)
    extra_bits = math.ceil(math.log2(count)) if count > 1 else 0
    prefix = network.prefixlen + extra_bits
    if prefix > 28:
        raise ValueError(f"{cidr} is too small for {count} subnets of at least /28")
    return [str(subnet) for subnet in list(network.subnets(new_prefix=prefix))[:count]]
