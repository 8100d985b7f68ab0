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
    dependencies: list[str] = field(default_factory=list)
    """URNs this resource depends on, exactly as the program sent them to the engine
    (`RegisterResourceRequest.dependencies`: explicit `depends_on`, a component expanded
    to its children by the SDK, plus every resource whose output is an input). The
    Pulumi engine creates these first and deletes them last."""
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Input name to the URNs its value came from (`propertyDependencies`)."""
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    """`create`, `update`, `delete` timeouts the program set (`customTimeouts`), e.g. `{"delete": "30m"}`."""
    protect: bool = False
    """`protect`: `pulumi destroy` refuses while this resource is protected."""
    retain_on_delete: bool = False
    """`retainOnDelete`: `pulumi destroy` drops it from the state and leaves it in the cloud."""

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
class Invocation:
    """One invoke (a data source read) the program made, and what the model answered."""

    token: str
    args: dict[str, Any]
    result: dict[str, Any]


@dataclass
class Graph:
    """The resources of one run in registration order, and the resolved stack outputs."""

    stack: str
    cloud: str
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    invokes: list[Invocation] = field(default_factory=list)
    """Every invoke of the run, in order (e.g. who the deploying principal is)."""

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Resource:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type_))
            raise KeyError(f"{type_} named {name!r}: found {len(found)}; names of that type: {names}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)

    def dependencies_of(self, urn: str) -> set[str]:
        """Every URN `urn` depends on, directly or through others: what the Pulumi engine
        creates before it and deletes after it."""
        direct = {r.urn: r.dependencies for r in self.resources}
        seen: set[str] = set()
        todo = list(direct.get(urn, []))
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(direct.get(current, []))
        return seen

    def depends_on(self, urn: str, other: str) -> bool:
        """Whether `urn` (transitively) depends on `other`."""
        return other in self.dependencies_of(urn)

    def children(self, urn: str) -> Iterator[Resource]:
        return (r for r in self.resources if r.parent == urn)

    @property
    def custom(self) -> list[Resource]:
        return [r for r in self.resources if r.custom]
