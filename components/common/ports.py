"""The port matrix of a swarm: who may reach which node on which port. Pure.

Both clouds build their firewalls (AWS security groups, Azure NSGs) from this one
table, so the rules are the same and are tested once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["managers", "workers", "lb"]
Source = Literal["managers", "workers", "admins", "lb", "clients"]
Protocol = Literal["tcp", "udp", "esp"]

DOCKER_TLS_PORT = 2376
SWARM_MANAGEMENT_PORT = 2377
GOSSIP_PORT = 7946
VXLAN_PORT = 4789
SSH_PORT = 22
NEVER_OPEN = 2375  # the plaintext Docker API


@dataclass(frozen=True)
class Ingress:
    """One allowed inbound flow."""

    target: Role
    """The group that receives the traffic."""
    source: Source
    """Where it may come from: a node group, the admins' ranges, the load balancer, or clients."""
    protocol: Protocol
    port: int | None
    """None for ESP, which has no ports."""
    description: str


@dataclass(frozen=True)
class Exposure:
    """What the cluster exposes, as the matrix needs it."""

    docker_api: bool
    ssh: bool
    published: tuple[tuple[int, Literal["tcp", "udp"]], ...]
    has_workers: bool
    load_balancer: bool


def swarm_traffic() -> list[Ingress]:
    """Between swarm nodes only: 2377/tcp to managers, gossip, VXLAN and ESP both ways."""
    rules: list[Ingress] = []
    for target in ("managers", "workers"):
        for source in ("managers", "workers"):
            if target == "managers":
                rules.append(Ingress(target, source, "tcp", SWARM_MANAGEMENT_PORT, f"swarm management from {source}"))
            rules += [
                Ingress(target, source, "tcp", GOSSIP_PORT, f"swarm gossip (tcp) from {source}"),
                Ingress(target, source, "udp", GOSSIP_PORT, f"swarm gossip (udp) from {source}"),
                Ingress(target, source, "udp", VXLAN_PORT, f"overlay VXLAN from {source}"),
                Ingress(target, source, "esp", None, f"encrypted overlay (ESP) from {source}"),
            ]
    return rules


def service_targets(exposure: Exposure) -> tuple[Role, ...]:
    """Which node groups the load balancer sends published ports to."""
    return ("workers",) if exposure.has_workers else ("managers",)


def ingress_matrix(exposure: Exposure) -> list[Ingress]:
    """Every allowed inbound flow of the cluster, nodes and load balancer alike."""
    rules = swarm_traffic()
    if exposure.docker_api:
        rules.append(Ingress("managers", "admins", "tcp", DOCKER_TLS_PORT, "TLS Docker API from admins"))
        if exposure.load_balancer:
            rules.append(Ingress("lb", "admins", "tcp", DOCKER_TLS_PORT, "TLS Docker API from admins"))
            rules.append(Ingress("managers", "lb", "tcp", DOCKER_TLS_PORT, "TLS Docker API via the load balancer"))
    if exposure.ssh:
        for target in ("managers", "workers"):
            rules.append(Ingress(target, "admins", "tcp", SSH_PORT, "SSH from admins"))
    if exposure.load_balancer:
        for port, protocol in exposure.published:
            rules.append(Ingress("lb", "clients", protocol, port, f"published {port}/{protocol} from clients"))
            for target in service_targets(exposure):
                rules.append(Ingress(target, "lb", protocol, port,
                                     f"published {port}/{protocol} via the load balancer"))
    return rules
