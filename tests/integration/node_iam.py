"""The harness's IAM, enforced: every node calls AWS as its own role, judged by moto.

moto's server starts with `INITIAL_NO_AUTH_ACTION_COUNT` (`MOTO_ENV`): it lets exactly the
first `SETUP_CALLS` calls through unjudged and evaluates the caller's identity policies on
every later call (`tests/unit/moto_iam.py` says how, and which calls `motoplus.py` makes it
judge on their resources instead of "*"). Those first calls are the harness's own setup
(`bootstrap`):

- an admin user with `AdministratorAccess` (moto ships the AWS-managed documents,
  `MOTO_IAM_LOAD_MANAGED_POLICIES=true`) and its access key: every later call the harness
  makes (provisioning, playing Auto Scaling and EC2, reading state) is the admin's;
- the manager and worker roles, trusting EC2 only (`identity.trust_policy`);
- one session of each role, as EC2 gets for an instance profile. The harness plays EC2
  here: a principal of the account could not assume a role that trusts only
  `ec2.amazonaws.com`, so the sessions are taken while nothing is judged yet.

The roles' policies are the program's own documents, put by the admin once the cluster key
exists (`grant_node_policies`: `identity.node_policy`) and per group (`grant_lifecycle`:
`nodes.lifecycle_policy`, managers on every group, workers on the worker groups, as
`components/aws/cluster.py` grants them). A session always holds its role's current
policies. A node gets its role's session through the fake IMDS
(`meta-data/iam/security-credentials/<role>`, `metadata`) as an instance does; its dockerd
(the awslogs driver) gets the same credentials in its environment.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components.aws.identity import node_policy, trust_policy
from components.aws.nodes import lifecycle_policy

ROLES = ("manager", "worker")
ADMIN = "swarmstack-harness-admin"
SETUP_CALLS = 7
"""The calls `bootstrap` makes before moto judges any: user, policy, key, two roles, two sessions."""
MOTO_ENV = {"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS), "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
SESSION_SECONDS = 43200
"""How long a role session lasts (the most AWS allows a role): longer than any harness lives."""
PARTITION = "aws"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str = ""
    expiration: str = ""

    def boto(self) -> dict[str, str]:
        """Keyword arguments of `boto3.client`."""
        return {"aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key,
                **({"aws_session_token": self.token} if self.token else {})}

    def env(self) -> dict[str, str]:
        """The environment variables of a process that signs with these credentials."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                **({"AWS_SESSION_TOKEN": self.token} if self.token else {})}


@dataclass(frozen=True)
class Identities:
    account: str
    admin: Credentials
    roles: dict[str, str]
    """Swarm role (manager, worker) -> IAM role name."""
    sessions: dict[str, Credentials]
    """Swarm role -> the credentials of its role's session."""


def role_name(role: str) -> str:
    return f"swarmstack-harness-{role}"


def bootstrap(endpoint: str, region: str) -> Identities:
    """The harness's setup calls, the only ones moto does not judge; then checks that moto
    judges the next one (a caller it does not know is refused)."""
    import boto3
    from botocore.exceptions import ClientError

    anyone = {"endpoint_url": endpoint, "region_name": region, "aws_access_key_id": "testing",
              "aws_secret_access_key": "testing"}
    iam, sts = boto3.client("iam", **anyone), boto3.client("sts", **anyone)
    iam.create_user(UserName=ADMIN)
    iam.attach_user_policy(UserName=ADMIN, PolicyArn=f"arn:{PARTITION}:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
    arns = {role: iam.create_role(RoleName=role_name(role), AssumeRolePolicyDocument=json.dumps(trust_policy()),
                                  MaxSessionDuration=SESSION_SECONDS)["Role"]["Arn"] for role in ROLES}
    sessions = {}
    for role in ROLES:
        found = sts.assume_role(RoleArn=arns[role], RoleSessionName=f"harness-{role}",
                                DurationSeconds=SESSION_SECONDS)["Credentials"]
        expiration = found["Expiration"].astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sessions[role] = Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"], expiration)
    try:
        sts.get_caller_identity()
    except ClientError as err:
        if err.response["Error"]["Code"] != "InvalidClientTokenId":
            raise
    else:
        raise RuntimeError(f"moto judged none of the calls after the first {SETUP_CALLS}: was it started with "
                           f"{MOTO_ENV}?")
    admin = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    account = boto3.client("sts", endpoint_url=endpoint, region_name=region, **admin.boto()).get_caller_identity()
    return Identities(str(account["Account"]), admin, {role: role_name(role) for role in ROLES}, sessions)


def log_group_arn(region: str, account: str, name: str) -> str:
    """A log group's ARN as the program's policy gets it (the provider's `arn`, no `:*`)."""
    return f"arn:{PARTITION}:logs:{region}:{account}:log-group:{name}"


def grant_node_policies(aws: Callable[..., Any], ids: Identities, region: str, cluster: str,
                        log_groups: list[str], key_arn: str, generation: str,
                        repository_arns: list[str] | None = None) -> None:
    """Each role's one inline policy, the program's document (`identity.node_policy`); with
    `repository_arns`, as a cluster with those ECR repositories grants it."""
    arns = [log_group_arn(region, ids.account, group) for group in log_groups]
    for role in ROLES:
        document = node_policy(role, PARTITION, region, ids.account, cluster, arns, key_arn, generation,  # type: ignore[arg-type]
                               repository_arns=repository_arns)
        aws("iam", "put_role_policy", RoleName=ids.roles[role], PolicyName=f"{cluster}-{role}-policy",
            PolicyDocument=json.dumps(document))


def grant_lifecycle(aws: Callable[..., Any], ids: Identities, region: str, group: str, roles: tuple[str, ...]) -> None:
    """The lifecycle grant of one group to `roles` (`nodes.lifecycle_policy`)."""
    for role in roles:
        aws("iam", "put_role_policy", RoleName=ids.roles[role], PolicyName=f"{group}-lifecycle-{role}",
            PolicyDocument=json.dumps(lifecycle_policy(PARTITION, region, ids.account, group)))


def metadata(ids: Identities, role: str) -> dict[str, str]:
    """What IMDS serves an instance of `role` about its instance profile's credentials."""
    session = ids.sessions[role]
    return {
        "meta-data/iam/security-credentials/": ids.roles[role],
        f"meta-data/iam/security-credentials/{ids.roles[role]}": json.dumps({
            "Code": "Success", "Type": "AWS-HMAC",
            "LastUpdated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "AccessKeyId": session.access_key, "SecretAccessKey": session.secret_key, "Token": session.token,
            "Expiration": session.expiration}),
    }
