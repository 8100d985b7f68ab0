"""Building rules: a rule declares the resource types it judges, the pack does the
filtering, and the rule's validate holds only its judgement."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

from pulumi_policy import (
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)


class Report(Protocol):
    """The engine's `report_violation`: a message, and for stack rules the resource's URN."""

    def __call__(self, message: str, urn: str | None = None, /) -> None: ...


class TypedResourcePolicy(ResourceValidationPolicy):
    """A resource rule with the resource types it applies to as metadata (`resource_types`)."""

    resource_types: tuple[str, ...]


def resource_rule(validate: Callable[[ResourceValidationArgs, Report], None], resource_types: Iterable[str],
                  **kwargs: Any) -> TypedResourcePolicy:
    """A ResourceValidationPolicy that sees only `resource_types`; its validate may leave out
    the URN (the engine's callback defaults it)."""
    types = tuple(resource_types)
    if not types:
        raise ValueError(f"{kwargs.get('name')}: a resource rule names the resource types it judges")

    def filtered(args: ResourceValidationArgs, report: Report) -> None:
        if args.resource_type in types:
            validate(args, report)

    policy = TypedResourcePolicy(validate=cast(Any, filtered), **kwargs)
    policy.resource_types = types
    return policy


def stack_rule(validate: Callable[[StackValidationArgs, Report], None], **kwargs: Any) -> StackValidationPolicy:
    return StackValidationPolicy(validate=cast(Any, validate), **kwargs)


def of_types(resources: Iterable[Any], *types: str) -> list[Any]:
    """The stack's resources of the given types, in order."""
    return [r for r in resources if r.resource_type in types]
