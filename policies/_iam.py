"""IAM documents as the rules read them: statements, action and resource globs, the
AWS-managed policies the pack knows (a bundled snapshot), and what a role can effectively
do once every policy it holds is counted.

The reading is deliberately simple and errs towards "allowed": an Allow with a condition
counts as granted (the pack cannot know the request's context), a Deny counts only when it
has no condition. That is the safe side for a rule that flags what a role can reach.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._props import as_list

MANAGED_SNAPSHOT = Path(__file__).with_name("aws_managed_policies.json")
_AWS_MANAGED = re.compile(r"^arn:[\w-]+:iam::aws:policy/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")


@functools.lru_cache(maxsize=1)
def managed_snapshot() -> dict[str, Any]:
    """The bundled AWS-managed policies: `{"source", "taken", "policies": {name: {"updateDate",
    "versionId", "document"}}}`."""
    return json.loads(MANAGED_SNAPSHOT.read_text())


def aws_managed_name(arn: str) -> str | None:
    """The policy's name when `arn` is an AWS-managed policy (`arn:aws:iam::aws:policy/…`)."""
    match = _AWS_MANAGED.match(arn)
    return match.group(1) if match else None


def managed_document(name: str) -> dict[str, Any] | None:
    """The snapshot's document of an AWS-managed policy, or None when the pack does not know it."""
    entry = managed_snapshot()["policies"].get(name)
    return entry["document"] if entry else None


def parse(document: Any) -> dict[str, Any] | None:
    """A policy document as a dict (documents often arrive as JSON text)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return None
    return document if isinstance(document, dict) else None


def statements(document: Any) -> list[dict[str, Any]]:
    parsed = parse(document)
    if parsed is None:
        return []
    return [s for s in as_list(parsed.get("Statement")) if isinstance(s, dict)]


@functools.lru_cache(maxsize=4096)
def _regex(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE if case_insensitive else 0)


def action_matches(pattern: str, action: str) -> bool:
    """IAM action globs: `*` and `?`, case-insensitive."""
    return _regex(pattern, True).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    """IAM resource globs: `*` and `?`, case-sensitive; `resource` is taken literally."""
    return _regex(pattern, False).fullmatch(resource) is not None


def common_string(p: str, q: str) -> str | None:
    """A string both globs match, or None when they share none; both may hold `*` and `?`.
    Stars take as little as they can, so the string is the most literal one (one witness
    of the overlap, which the rules then test against Deny statements)."""

    def char(c: str) -> str:
        return "x" if c == "?" else c

    @functools.cache
    def walk(i: int, j: int) -> str | None:
        if i == len(p) and j == len(q):
            return ""
        if i < len(p) and p[i] == "*":
            rest = walk(i + 1, j)  # the star matches nothing more
            if rest is None and j < len(q):
                rest = walk(i, j + 1)  # it takes q[j] (a star of q then matches nothing)
                if rest is not None and q[j] != "*":
                    rest = char(q[j]) + rest
            return rest
        if j < len(q) and q[j] == "*":
            rest = walk(i, j + 1)
            if rest is None and i < len(p):
                rest = walk(i + 1, j)
                if rest is not None:
                    rest = char(p[i]) + rest
            return rest
        if i < len(p) and j < len(q) and (p[i] == q[j] or "?" in (p[i], q[j])):
            rest = walk(i + 1, j + 1)
            if rest is not None:
                return char(q[j] if p[i] == "?" else p[i]) + rest
        return None

    return walk(0, 0)


@dataclass(frozen=True)
class Grant:
    """One statement of a policy a role holds, and where it comes from."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditional: bool
    source: str
    """How to name the policy in a message: an inline policy's name or a managed policy's."""

    def covers(self, action: str) -> bool:
        return any(action_matches(a, action) for a in self.actions)


def grants(document: Any, source: str) -> Iterator[Grant]:
    """The statements of `document` that grant or deny (NotAction/NotResource are read as
    covering everything, the safe side for an Allow; a Deny with them is ignored)."""
    for statement in statements(document):
        effect = str(statement.get("Effect", "Allow"))
        if "NotAction" in statement or "NotResource" in statement:
            if effect == "Allow":
                yield Grant("Allow", ("*",), ("*",), "Condition" in statement, source)
            continue
        actions = tuple(str(a) for a in as_list(statement.get("Action")))
        resources = tuple(str(r) for r in as_list(statement.get("Resource")))
        yield Grant(effect, actions, resources, "Condition" in statement, source)


@dataclass(frozen=True)
class Permissions:
    """Everything a principal holds, read together: any Allow grants, an unconditional Deny wins."""

    held: tuple[Grant, ...]

    def _denies(self, action: str, resource: str) -> bool:
        return any(g.effect == "Deny" and not g.conditional and g.covers(action)
                   and any(resource_matches(r, resource) for r in g.resources) for g in self.held)

    def reaches(self, action: str, target: str) -> Grant | None:
        """The first Allow through which `action` reaches some resource `target` (a glob)
        matches, with no unconditional Deny covering that resource; else None."""
        for grant in self.held:
            if grant.effect != "Allow" or not grant.covers(action):
                continue
            for pattern in grant.resources:
                witness = common_string(pattern, target)
                if witness is not None and not self._denies(action, witness):
                    return grant
        return None

    def can(self, action: str) -> Grant | None:
        """The first Allow through which `action` reaches any resource at all."""
        return self.reaches(action, "*")
