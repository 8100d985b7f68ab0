"""Unknown-aware access to the properties the engine hands a rule (camelCase, numbers as
floats, unknowns in preview)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, _is_unknown

UNKNOWN = UNKNOWN_STRING_VALUE
"""The sentinel the engine sends for a value not known until the update runs."""


def is_unknown(value: Any) -> bool:
    return _is_unknown(value)


def plain(value: Any) -> Any:
    """The value under pulumi_policy's unknown-checking proxies, as plain dicts and lists
    (unknowns stay as their sentinel strings: test them with `is_unknown`)."""
    if isinstance(value, Mapping):
        target = cast(Any, value)["__target"] if _is_proxy(value) else value
        return {key: plain(item) for key, item in dict(target).items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if _is_proxy(value):
            value = cast(Any, value)["__target"]
        return [plain(item) for item in value]
    return value


def _is_proxy(value: Any) -> bool:
    return type(value).__name__ in ("_DictProxy", "_ListProxy")


def need(value: Any, *path: str | int) -> Any:
    """Return `value`, or raise the engine's UnknownValueError when the rule cannot
    decide without it (the engine then reports that the policy can't run in preview)."""
    if is_unknown(value):
        raise UnknownValueError(value, [str(p) for p in path])
    return value


def dig(props: Any, *path: str | int, default: Any = None) -> Any:
    """`props[a][b][c]` on plain data, `default` where a step is missing. An unknown
    step yields the unknown sentinel (check it with `is_unknown` or `need`)."""
    current = props
    for step in path:
        if is_unknown(current):
            return current
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return default
        elif not isinstance(current, dict) or step not in current:
            return default
        current = current[step]
    return default if current is None else current


def truthy(value: Any) -> bool:
    """AWS takes some booleans as strings (launch template `encrypted: "true"`)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def number(value: Any) -> float | None:
    """Numbers cross the wire as floats (3 arrives as 3.0); strings of digits count too."""
    if isinstance(value, bool) or value is None or is_unknown(value):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]
