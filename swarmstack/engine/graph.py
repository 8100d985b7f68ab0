"""What a run of the program produced: every resource registered, and the stack outputs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Resource:
    """One registered resource as the engine saw it."""

    urn: str
    type: str
    name: str
    parent: str
    """URN of the parent ("" for children of the stack)."""
    custom: bool
    """True for cloud resources, False for components."""
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str = ""
    secret_inputs: set[str] = field(default_factory=set)
    """Inputs the program marked secret: never printed."""

    @property
    def short_type(self) -> str:
        """`aws:ec2/subnet:Subnet` -> `ec2.Subnet`."""
        package, _, rest = self.type.partition(":")
        module, _, kind = rest.partition(":")
        module = module.split("/")[0]
        if package == "swarmstack":
            return f"{module}.{kind}"
        return f"{module}.{kind}" if module not in ("index", "") else kind


@dataclass
class Graph:
    """The resources of one run in registration order, and the resolved stack outputs."""

    stack: str
    cloud: str
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Resource:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type_))
            raise KeyError(f"{type_} named {name!r}: found {len(found)}; names of that type: {names}")
        return found[0]

    def children(self, urn: str) -> Iterator[Resource]:
        return (r for r in self.resources if r.parent == urn)

    @property
    def custom(self) -> list[Resource]:
        return [r for r in self.resources if r.custom]
