"""moto's IAM evaluation, made to judge calls on the resources AWS judges them on.

With IAM authentication on (`moto.core.enable_iam_authentication()`, which is what the
`INITIAL_NO_AUTH_ACTION_COUNT` setting controls), moto evaluates the caller's identity
policies on every request: inline and attached ones, AWS-managed ones included, explicit
Deny first. But it works out the resource a request acts on only for S3, SQS, IAM and
STS; every other service is judged against `Resource: "*"` (`BaseResponse.call_action`
asks the response class for `_determine_resource`, and only those four have one). A policy
scoped to ARNs is then never matched, so an Allow on one parameter would be denied and a
Deny on one would never bite.

The context managers here give the calls the nodes make what AWS authorises them against
(the Service Authorization Reference's resource types), and change nothing else: the
evaluation, the Deny-over-Allow order and the AccessDenied error are moto's own.
- `parameter_resources()`: SSM's `GetParameter`, `GetParameters` and `PutParameter`, the
  ARN of each parameter named in the request (`GetParameters` needs every one allowed);
- `log_resources()`: CloudWatch Logs' `CreateLogStream` and `DescribeLogStreams` on the
  log group's ARN, `PutLogEvents` on the log stream's;
- `lifecycle_resources()`: Auto Scaling's `CompleteLifecycleAction` and
  `RecordLifecycleActionHeartbeat` on the ARN of the group they name, `SetInstanceHealth`
  on the ARN of the instance's group;
- `repository_resources()`: ECR's image calls (`BatchGetImage`, `GetDownloadUrlForLayer`,
  `BatchCheckLayerAvailability`, …) on the repository's ARN (`GetAuthorizationToken` stays "*");
- `node_resources()`: the first three (the integration harness's moto server runs with it).

What stays out of reach: conditions moto has no value for (`kms:ViaService`,
`kms:EncryptionContext:*` — moto's SSM never calls KMS as the caller; moto also treats an
Allow whose condition fails as a Deny), KMS key policies, and resource-level judgement of
every other call (moto judges those against "*", so only a statement on "*" applies).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

PARAMETER_ACTIONS = {"GetParameter": "Name", "PutParameter": "Name", "GetParameters": "Names"}
LOG_GROUP_ACTIONS = ("CreateLogStream", "DescribeLogStreams")
LOG_STREAM_ACTIONS = ("PutLogEvents",)
LIFECYCLE_ACTIONS = ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat")
INSTANCE_HEALTH = "SetInstanceHealth"


def parameter_arn(partition: str, region: str, account: str, name: str) -> str:
    """The ARN IAM sees for a parameter (a name without a leading slash gets one)."""
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


@contextmanager
def _judged_on(response: type, resources: Callable[[Any], list[str] | None]) -> Iterator[None]:
    """While active, moto authorises each call of `response`'s service on every ARN
    `resources(response)` returns, or on "*" as before when it returns None."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    original = response._authenticate_and_authorize_normal_action  # type: ignore[attr-defined]

    def authorize(self: Any, resource: str = "*") -> None:
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            return original(self, resource)  # type: ignore[no-any-return]  # nothing is judged yet
        found = resources(self)
        if found is None:
            return original(self, resource)  # type: ignore[no-any-return]
        for arn in found:
            original(self, arn)
        return None

    response._authenticate_and_authorize_normal_action = authorize  # type: ignore[attr-defined]
    try:
        yield
    finally:
        response._authenticate_and_authorize_normal_action = original  # type: ignore[attr-defined]


def _body(self: Any) -> dict[str, Any]:
    return json.loads(self.body or b"{}")  # type: ignore[no-any-return]


def _parameters(self: Any) -> list[str] | None:
    from moto.utilities.utils import get_partition

    key = PARAMETER_ACTIONS.get(self._get_action())
    if key is None:
        return None
    names = _body(self).get(key)
    names = names if isinstance(names, list) else [names]
    return [parameter_arn(get_partition(self.region), self.region, self.current_account, str(name))
            for name in names]


def _logs(self: Any) -> list[str] | None:
    from moto.utilities.utils import get_partition

    action = self._get_action()
    if action not in (*LOG_GROUP_ACTIONS, *LOG_STREAM_ACTIONS):
        return None
    body = _body(self)
    arn = f"arn:{get_partition(self.region)}:logs:{self.region}:{self.current_account}:log-group:{body.get('logGroupName')}"
    return [f"{arn}:log-stream:{body.get('logStreamName')}" if action in LOG_STREAM_ACTIONS else arn]


def _lifecycle(self: Any) -> list[str] | None:
    from moto.utilities.utils import get_partition

    action = self._get_action()
    backend = self.autoscaling_backend
    if action in LIFECYCLE_ACTIONS:
        name = self._get_param("AutoScalingGroupName")
        group = backend.autoscaling_groups.get(name)
        # a group that does not exist: its ARN by name (the call itself then fails as on AWS)
        return [group.arn if group is not None else
                f"arn:{get_partition(self.region)}:autoscaling:{self.region}:{self.current_account}"
                f":autoScalingGroup:unknown:autoScalingGroupName/{name}"]
    if action == INSTANCE_HEALTH:
        instance = self._get_param("InstanceId")
        for group in backend.autoscaling_groups.values():
            if any(state.instance.id == instance for state in group.instance_states):
                return [group.arn]
        return ["*"]
    return None


@contextmanager
def parameter_resources() -> Iterator[None]:
    """While active, moto authorises the parameter calls on each parameter's ARN."""
    from moto.ssm.responses import SimpleSystemManagerResponse

    with _judged_on(SimpleSystemManagerResponse, _parameters):
        yield


@contextmanager
def log_resources() -> Iterator[None]:
    """While active, moto authorises the log stream calls on their group's or stream's ARN."""
    from moto.logs.responses import LogsResponse

    with _judged_on(LogsResponse, _logs):
        yield


@contextmanager
def lifecycle_resources() -> Iterator[None]:
    """While active, moto authorises a node's lifecycle calls on its auto scaling group's ARN."""
    from moto.autoscaling.responses import AutoScalingResponse

    with _judged_on(AutoScalingResponse, _lifecycle):
        yield


ECR_REPOSITORY_ACTIONS = ("BatchGetImage", "GetDownloadUrlForLayer", "BatchCheckLayerAvailability",
                          "DescribeImages", "ListImages", "PutImage", "InitiateLayerUpload")


def _repositories(self: Any) -> list[str] | None:
    from moto.utilities.utils import get_partition

    if self._get_action() not in ECR_REPOSITORY_ACTIONS:
        return None  # GetAuthorizationToken has no resource type: "*"
    body = _body(self)
    registry = body.get("registryId") or self.current_account
    return [f"arn:{get_partition(self.region)}:ecr:{self.region}:{registry}:repository/{body.get('repositoryName')}"]


@contextmanager
def repository_resources() -> Iterator[None]:
    """While active, moto authorises ECR's image calls on the repository's ARN."""
    from moto.ecr.responses import ECRResponse

    with _judged_on(ECRResponse, _repositories):
        yield


@contextmanager
def node_resources() -> Iterator[None]:
    """Every resource-scoped call a node makes, judged on its resource."""
    with parameter_resources(), log_resources(), lifecycle_resources():
        yield


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
