"""A bucket policy judged with the request's context, where moto cannot.

moto applies a bucket's policy to object calls (`FakeBucket.get_permission`) but without
any request context: its conditions know only `StringEquals` on values it never has, and a
statement whose condition does not hold counts as a Deny. A policy with `aws:PrincipalArn`
or `aws:SecureTransport` conditions then refuses everyone. `judged_as(principal_arn)` makes
moto judge the policy with this module's evaluator for one caller, over TLS; the identity
policies stay moto's to judge. The engine writes the stack's objects (`BucketObjectv2`) as
the deploying principal under it; the tests judge a node role's calls with it.

The evaluator covers what swarmstack's bucket policies use: Allow/Deny, `Principal: "*"`
(a service principal never matches the role or user asking),
`Action`/`Resource` with `*` wildcards, and `StringEquals`, `StringNotEquals`,
`StringLike`, `Bool` on keys the context has (a key it lacks is an error, not a guess).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _condition_holds(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            if key not in context:
                raise KeyError(f"condition key {key} is not in the request context {sorted(context)}")
            actual, wanted = context[key], [str(v) for v in _list(expected)]
            if operator == "StringEquals":
                ok = actual in wanted
            elif operator == "StringNotEquals":
                ok = actual not in wanted
            elif operator == "StringLike":
                ok = any(fnmatch.fnmatchcase(actual, w) for w in wanted)
            elif operator == "Bool":
                ok = actual.lower() in [w.lower() for w in wanted]
            else:
                raise ValueError(f"condition operator {operator} is not modelled")
            if not ok:
                return False
    return True


def evaluate(policy: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> str:
    """"Deny", "Allow" or "Neutral" for one request, explicit Deny first."""
    result = "Neutral"
    for statement in policy["Statement"]:
        principal = statement.get("Principal")
        if principal != "*":
            if isinstance(principal, dict) and set(principal) == {"Service"}:
                continue  # a service principal: never the role or user asking here
            raise ValueError(f"principal {principal} is not modelled")
        if not any(fnmatch.fnmatch(action.lower(), a.lower()) for a in _list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _list(statement["Resource"])):
            continue
        if not _condition_holds(statement.get("Condition", {}), context):
            continue
        if statement["Effect"] == "Deny":
            return "Deny"
        result = "Allow"
    return result


@contextmanager
def judged_as(principal_arn: str, secure: bool = True) -> Iterator[None]:
    """While active, moto judges bucket policies for this caller (`aws:PrincipalArn`) and
    transport (`aws:SecureTransport`)."""
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    original = FakeBucket.get_permission
    context = {"aws:PrincipalArn": principal_arn, "aws:SecureTransport": "true" if secure else "false"}

    def judge(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        verdict = evaluate(json.loads(self.policy), action, resource, context)
        return {"Deny": PermissionResult.DENIED, "Allow": PermissionResult.PERMITTED}.get(
            verdict, PermissionResult.NEUTRAL)

    FakeBucket.get_permission = judge  # type: ignore[method-assign]
    try:
        yield
    finally:
        FakeBucket.get_permission = original  # type: ignore[method-assign]
