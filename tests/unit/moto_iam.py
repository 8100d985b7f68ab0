"""moto's IAM evaluation, made to judge Parameter Store calls on their parameters.

With IAM authentication on (`moto.core.enable_iam_authentication()`, which is what the
`INITIAL_NO_AUTH_ACTION_COUNT` setting controls), moto evaluates the caller's identity
policies on every request: inline and attached ones, AWS-managed ones included, explicit
Deny first. But it works out the resource a request acts on only for S3, SQS, IAM and
STS; every other service is judged against `Resource: "*"` (`BaseResponse.call_action`
asks the response class for `_determine_resource`, and only those four have one). A policy
scoped to parameter ARNs is then never matched, so an Allow on one parameter would be
denied and a Deny on one would never bite.

`parameter_resources()` gives SSM's `GetParameter`, `GetParameters` and `PutParameter`
what AWS authorises them against: the ARN of each parameter named in the request
(`GetParameters` needs every one of them allowed). Nothing else changes: the evaluation,
the Deny-over-Allow order and the AccessDenied error are moto's own.

What stays out of reach: conditions moto has no value for (`kms:ViaService`,
`kms:EncryptionContext:*` — moto's SSM never calls KMS as the caller), KMS key policies,
and resource-level judgement of every other service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PARAMETER_ACTIONS = {"GetParameter": "Name", "PutParameter": "Name", "GetParameters": "Names"}


def parameter_arn(partition: str, region: str, account: str, name: str) -> str:
    """The ARN IAM sees for a parameter (a name without a leading slash gets one)."""
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


@contextmanager
def parameter_resources() -> Iterator[None]:
    """While active, moto authorises the parameter calls on each parameter's ARN."""
    from moto.ssm.responses import SimpleSystemManagerResponse
    from moto.utilities.utils import get_partition

    original = SimpleSystemManagerResponse._authenticate_and_authorize_normal_action

    def authorize(self: Any, resource: str = "*") -> None:
        key = PARAMETER_ACTIONS.get(self._get_action())
        if key is None:
            return original(self, resource)
        body = json.loads(self.body or b"{}")
        names = body.get(key)
        names = names if isinstance(names, list) else [names]
        for name in names:
            original(self, parameter_arn(get_partition(self.region), self.region, self.current_account, str(name)))

    SimpleSystemManagerResponse._authenticate_and_authorize_normal_action = authorize  # type: ignore[method-assign]
    try:
        yield
    finally:
        SimpleSystemManagerResponse._authenticate_and_authorize_normal_action = original  # type: ignore[method-assign]


def load_aws_managed_policy(account: str, region: str, name: str) -> str:
    """Make one AWS-managed policy known to moto from the documents it ships
    (`moto/iam/aws_managed_policies.py`; `MOTO_IAM_LOAD_MANAGED_POLICIES=true` would load
    all ~1,500 at backend start). Returns its ARN."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    arn = f"arn:aws:iam::aws:policy/{name}"
    backend = iam_backends[account]["aws"]
    if arn not in backend.managed_policies:
        data = json.loads(aws_managed_policies_data)[name]
        backend.managed_policies[arn] = AWSManagedPolicy.from_data(name, account, region, data)
    return arn
