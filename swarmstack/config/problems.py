"""How a configuration problem is told to the user: one line per problem."""

from __future__ import annotations

import json
from dataclasses import dataclass

ROOT_KEY = "swarmstack:cluster"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack's config, at one key."""

    path: str
    """Key path below `swarmstack:cluster` (`managers.count`), or a full key (`aws:region`)."""
    value: object
    """The bad value as the user wrote it; `MISSING` when absent."""
    message: str
    """What is wrong and what would be valid."""

    def line(self, source: str) -> str:
        # A full key (`aws:region`) has its namespace in its first segment; a key below the
        # cluster may hold a colon further on (`tags.swarmstack:stack`).
        full = ":" in self.path.split(".", 1)[0]
        key = self.path if full else f"{ROOT_KEY}.{self.path}" if self.path else ROOT_KEY
        return f"{source}: {key} = {show(self.value)}: {self.message}"


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING = _Missing()


def show(value: object) -> str:
    """Render a value compactly, as the user would recognise it from YAML."""
    if value is MISSING:
        return "(missing)"
    if isinstance(value, str):
        return value if value and value.strip() == value else json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    try:
        return json.dumps(value, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return repr(value)


class ConfigError(Exception):
    """Raised with every problem found, one line each, before anything is created."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.line(source) for p in problems))

    @property
    def lines(self) -> list[str]:
        return [p.line(self.source) for p in self.problems]
