"""What each node role can really do with the swarm's secrets, evaluated, not read.

The real program deploys `prod-aws` into moto; the managers' state is then written as the
node script writes it (join tokens SecureString under the cluster key). Each test assumes
a node role the program created, as an instance does, and calls Parameter Store, Auto
Scaling and CloudWatch Logs with its credentials while moto evaluates IAM (`moto_iam.py`
says how, and what it cannot judge: KMS conditions and key policies are covered in
`test_aws_identity.py`). The integration harness enforces the same documents on running
nodes (`tests/integration/test_node_iam.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto_iam import load_aws_managed_policy, node_resources
from s3_policy import judged_as

from swarmstack.config.load import read_stack_file
from swarmstack.engine.aws import AwsBackend
from swarmstack.engine.run import backends_for, run_stack

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("tokens/manager", "tokens/worker", "tls/server-key")
WORKER_SECRETS = {"tokens/manager": False, "tokens/worker": True, "tls/server-key": False}
EVERY_PATH = ("init", "managers", "takeover/i-0dead", "tokens/manager", "tokens/worker",
              "tls/ca-cert", "tls/server-cert", "tls/server-key")


@dataclass
class Cluster:
    backend: AwsBackend
    name: str
    generation: str
    key_arn: str
    roles: dict[str, str]
    """role (manager, worker) → IAM role name."""

    def path(self, name: str) -> str:
        """A parameter's full name: TLS beside the generations, the rest under this one."""
        return f"/swarmstack/{self.name}/{name}" if name.startswith("tls/") else \
            f"/swarmstack/{self.name}/{self.generation}/{name}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    config = read_stack_file("prod-aws", ROOT)[1]
    with ExitStack() as exits:
        backends = backends_for(config, exits)
        backend = backends["aws"]
        assert isinstance(backend, AwsBackend)
        graph = run_stack("prod-aws", config, ROOT, backends=backends)
        name = config["swarmstack:cluster"]["name"]
        (generation,) = [r.outputs["hex"] for r in graph.of_type("random:index/randomId:RandomId")
                         if r.name.endswith("-generation")]
        kms, iam = backend.client("kms"), backend.client("iam")
        key = next(a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]
                   if a["AliasName"] == f"alias/swarmstack/{name}")
        key_arn = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
        roles = {}
        for role in iam.list_roles()["Roles"]:
            for policy in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                for kind in ("manager", "worker"):
                    if policy == f"{name}-{kind}-policy":
                        roles[kind] = role["RoleName"]
        assert set(roles) == {"manager", "worker"}
        found = Cluster(backend, name, generation, key_arn, roles)
        ssm = backend.client("ssm")  # what the first manager writes (the TLS parameters are the stack's)
        for item in ("init", "managers", "takeover/i-0dead"):
            ssm.put_parameter(Name=found.path(item), Type="String", Value="10.0.1.5")
        for role in ("manager", "worker"):
            ssm.put_parameter(Name=found.path(f"tokens/{role}"), Type="SecureString", KeyId=key_arn,
                              Value=f"SWMTKN-1-{role}")
        yield found


def node_client(cluster: Cluster, role: str, service: str) -> Any:
    """A client with the credentials an instance of `role` gets (EC2 assumes the role)."""
    arn = cluster.backend.client("iam").get_role(RoleName=cluster.roles[role])["Role"]["Arn"]
    creds = cluster.backend.client("sts").assume_role(RoleArn=arn, RoleSessionName="i-0123456789abcdef0")
    creds = creds["Credentials"]
    return boto3.client(service, region_name=cluster.backend.region, aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def node_ssm(cluster: Cluster, role: str) -> Any:
    return node_client(cluster, role, "ssm")


def can(call: Any, **kwargs: Any) -> bool:
    """Whether IAM lets the call through (moto evaluating the caller's policies)."""
    from moto.core import enable_iam_authentication

    with enable_iam_authentication(), node_resources():
        try:
            call(**kwargs)
        except ClientError as err:
            # moto answers a JSON-protocol call with an XML AccessDenied body, which botocore
            # reports as code "403"; the message still names it
            status = err.response["ResponseMetadata"]["HTTPStatusCode"]
            if status == 403 and "AccessDenied" in str(err):
                return False
            raise
    return True


def reads(cluster: Cluster, role: str, names: tuple[str, ...] = EVERY_PATH) -> dict[str, bool]:
    ssm = node_ssm(cluster, role)
    return {name: can(ssm.get_parameter, Name=cluster.path(name), WithDecryption=True) for name in names}


def test_a_worker_reads_what_joining_needs_and_no_secret_of_the_managers(cluster: Cluster) -> None:
    assert reads(cluster, "worker") == {
        "init": True, "managers": True, "tokens/worker": True, "takeover/i-0dead": False,
        "tokens/manager": False, "tls/ca-cert": False, "tls/server-cert": False, "tls/server-key": False}
    ssm = node_ssm(cluster, "worker")
    # GetParameters is judged on every name it asks for: one forbidden name refuses the call
    assert can(ssm.get_parameters, Names=[cluster.path("tokens/worker"), cluster.path("managers")],
               WithDecryption=True)
    assert not can(ssm.get_parameters, Names=[cluster.path("tokens/worker"), cluster.path("tokens/manager")],
                   WithDecryption=True)


def test_a_worker_writes_nothing(cluster: Cluster) -> None:
    ssm = node_ssm(cluster, "worker")
    for name in ("init", "managers", "tokens/worker", "tokens/manager"):
        assert not can(ssm.put_parameter, Name=cluster.path(name), Type="String", Value="x", Overwrite=True), name


def test_a_manager_reads_and_keeps_the_swarm_state(cluster: Cluster) -> None:
    assert reads(cluster, "manager") == dict.fromkeys(EVERY_PATH, True)
    ssm = node_ssm(cluster, "manager")
    assert can(ssm.put_parameter, Name=cluster.path("tokens/manager"), Type="SecureString",
               KeyId=cluster.key_arn, Value="SWMTKN-1-manager", Overwrite=True)
    assert can(ssm.get_parameters, Names=[cluster.path(n) for n in ("tls/ca-cert", "tls/server-cert",
                                                                    "tls/server-key")], WithDecryption=True)
    # the stack owns the TLS parameters; other generations and other clusters are not the node's
    assert not can(ssm.put_parameter, Name=cluster.path("tls/server-key"), Type="SecureString",
                   Value="x", Overwrite=True)
    assert not can(ssm.get_parameter, Name=f"/swarmstack/{cluster.name}/0badcafe/tokens/manager")
    assert not can(ssm.get_parameter, Name=f"/swarmstack/other/{cluster.generation}/tokens/manager")


def test_no_node_can_write_the_tags_the_leader_labels_nodes_from(cluster: Cluster) -> None:
    """The leader takes a node's pool from its instance's `swarmstack:pool` tag (issue 10,
    trusted labels): a node that could tag would choose its own placement again."""
    for role in ("manager", "worker"):
        ec2 = node_client(cluster, role, "ec2")
        assert can(ec2.describe_instances), role  # the credentials work: the refusals below are IAM's
        assert not can(ec2.create_tags, Resources=["i-0123456789abcdef0"],
                       Tags=[{"Key": "swarmstack:pool", "Value": "gpu"}]), role
        assert not can(ec2.delete_tags, Resources=["i-0123456789abcdef0"],
                       Tags=[{"Key": "swarmstack:pool"}]), role


def test_the_old_ssm_core_attachment_would_hand_a_worker_every_secret(cluster: Cluster) -> None:
    """IAM permissions add up: `AmazonSSMManagedInstanceCore` allows GetParameter(s) on "*".
    A worker role with only its Allows and that attachment (how the roles were built
    before) reads every secret; with the worker's Deny statements it still reads only its
    own token."""
    iam = cluster.backend.client("iam")
    worker = cluster.roles["worker"]
    document = iam.get_role_policy(RoleName=worker, PolicyName=f"{cluster.name}-worker-policy")["PolicyDocument"]
    allows = {**document, "Statement": [s for s in document["Statement"] if s["Effect"] == "Allow"]}
    core = load_aws_managed_policy(cluster.backend.account, cluster.backend.region, "AmazonSSMManagedInstanceCore")
    iam.attach_role_policy(RoleName=worker, PolicyArn=core)
    try:
        assert reads(cluster, "worker", SECRETS) == WORKER_SECRETS  # the second wall holds
        iam.put_role_policy(RoleName=worker, PolicyName=f"{cluster.name}-worker-policy",
                            PolicyDocument=json.dumps(allows))
        assert reads(cluster, "worker", SECRETS) == dict.fromkeys(SECRETS, True)
        iam.detach_role_policy(RoleName=worker, PolicyArn=core)
        assert reads(cluster, "worker", SECRETS) == WORKER_SECRETS
    finally:
        iam.put_role_policy(RoleName=worker, PolicyName=f"{cluster.name}-worker-policy",
                            PolicyDocument=json.dumps(document))
        if core in [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=worker)["AttachedPolicies"]]:
            iam.detach_role_policy(RoleName=worker, PolicyArn=core)


def test_without_the_wrapper_moto_judges_parameter_calls_against_star(cluster: Cluster) -> None:
    """Why `parameter_resources` exists: left alone, moto matches a parameter call against
    "*", so the worker's Allow on its own token's ARN never applies."""
    from moto.core import enable_iam_authentication

    ssm = node_ssm(cluster, "worker")
    with enable_iam_authentication(), pytest.raises(ClientError, match="AccessDenied"):
        ssm.get_parameter(Name=cluster.path("tokens/worker"), WithDecryption=True)


def test_no_node_role_attaches_a_managed_policy(cluster: Cluster) -> None:
    iam = cluster.backend.client("iam")
    for role in cluster.roles.values():
        assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []


def passes_iam(call: Any, **kwargs: Any) -> bool:
    """Whether IAM lets the call through, whatever the call itself then answers (moto
    judges IAM first; in process, moto has no lifecycle actions at all)."""
    try:
        return can(call, **kwargs)
    except (ClientError, NotImplementedError):
        return True


def test_a_worker_completes_only_its_own_groups_lifecycle_actions(cluster: Cluster) -> None:
    """Each node group grants the lifecycle calls on its own group: managers on every
    group, workers on the worker groups (`nodes.lifecycle_policy`), judged on the group's
    ARN (`moto_iam.lifecycle_resources`)."""
    autoscaling = cluster.backend.client("autoscaling")
    groups = {g["AutoScalingGroupName"]: g for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]}
    managers, general = f"{cluster.name}-managers-asg", f"{cluster.name}-general-asg"
    assert {managers, general} <= set(groups)
    judged = {}
    for role in ("manager", "worker"):
        client = node_client(cluster, role, "autoscaling")
        for group in (managers, general):
            instance = groups[group]["Instances"][0]["InstanceId"]
            action = {"AutoScalingGroupName": group, "LifecycleHookName": "swarmstack-drain", "InstanceId": instance}
            judged[role, group] = (
                passes_iam(client.complete_lifecycle_action, **action, LifecycleActionResult="CONTINUE"),
                passes_iam(client.record_lifecycle_action_heartbeat, **action),
                passes_iam(client.set_instance_health, InstanceId=instance, HealthStatus="Healthy"))
    assert judged == {("manager", managers): (True, True, True), ("manager", general): (True, True, True),
                      ("worker", managers): (False, False, False), ("worker", general): (True, True, True)}


def test_nodes_write_only_the_clusters_log_groups(cluster: Cluster) -> None:
    for role in ("manager", "worker"):
        logs = node_client(cluster, role, "logs")
        assert passes_iam(logs.create_log_stream, logGroupName=f"/swarmstack/{cluster.name}/bootstrap",
                          logStreamName=f"i-0{role}"), role
        assert passes_iam(logs.put_log_events, logGroupName=f"/swarmstack/{cluster.name}/bootstrap",
                          logStreamName=f"i-0{role}", logEvents=[{"timestamp": 0, "message": "hello"}]), role
        assert not passes_iam(logs.create_log_stream, logGroupName="/other/app", logStreamName="i-0"), role
        assert not passes_iam(logs.put_log_events, logGroupName="/other/app", logStreamName="i-0",
                              logEvents=[{"timestamp": 0, "message": "hello"}]), role


BACKUPS = "swarmstack-prod-backups-123456789012-eu-west-1"
"""The raft backup bucket of prod-aws (`components/aws/backup.py`; moto's account, eu-west-1)."""


def role_arn(cluster: Cluster, role: str) -> str:
    return str(cluster.backend.client("iam").get_role(RoleName=cluster.roles[role])["Role"]["Arn"])


def stores(cluster: Cluster, role: str, call: Any, **kwargs: Any) -> bool:
    """`can`, with moto judging the bucket policy for this role too (`s3_policy.judged_as`:
    moto alone refuses every caller a conditional bucket policy names). A refusal by S3 is
    a bare 403."""
    with judged_as(role_arn(cluster, role)):
        try:
            return can(call, **kwargs)
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 403:
                return False
            raise


def test_a_manager_keeps_raft_backups_under_swarm_and_nowhere_else(cluster: Cluster) -> None:
    s3 = node_client(cluster, "manager", "s3")
    assert stores(cluster, "manager", s3.put_object, Bucket=BACKUPS, Key="swarm/2026-01-01T03:17:00Z.tar.gz", Body=b"raft")
    assert stores(cluster, "manager", s3.get_object, Bucket=BACKUPS, Key="swarm/2026-01-01T03:17:00Z.tar.gz")
    assert not stores(cluster, "manager", s3.put_object, Bucket=BACKUPS, Key="elsewhere/x", Body=b"raft")
    assert not stores(cluster, "manager", s3.delete_object, Bucket=BACKUPS, Key="swarm/2026-01-01T03:17:00Z.tar.gz")
    assert not stores(cluster, "manager", s3.put_object, Bucket=f"swarmstack-prod-lb-logs-{cluster.generation}",
                      Key="swarm/x", Body=b"x")


def test_a_worker_cannot_touch_the_backups_even_with_a_broader_allow(cluster: Cluster) -> None:
    """The backups hold the raft keys: a worker has no grant, the bucket policy refuses it,
    and its explicit Deny on the bucket holds on its own should `AmazonS3FullAccess` ever be
    attached to its role."""
    with judged_as(role_arn(cluster, "manager")):  # a manager's backup (the test's client has the account's keys)
        cluster.backend.client("s3").put_object(Bucket=BACKUPS, Key="swarm/seeded.tar.gz", Body=b"raft")
    iam = cluster.backend.client("iam")
    worker = cluster.roles["worker"]
    s3 = node_client(cluster, "worker", "s3")
    calls = ((s3.get_object, {"Bucket": BACKUPS, "Key": "swarm/seeded.tar.gz"}),
             (s3.put_object, {"Bucket": BACKUPS, "Key": "swarm/forged.tar.gz", "Body": b"x"}),
             (s3.list_objects_v2, {"Bucket": BACKUPS, "Prefix": "swarm/"}))
    assert not any(stores(cluster, "worker", call, **kwargs) for call, kwargs in calls)
    full = load_aws_managed_policy(cluster.backend.account, cluster.backend.region, "AmazonS3FullAccess")
    iam.attach_role_policy(RoleName=worker, PolicyArn=full)
    try:
        assert can(s3.list_buckets)  # the attachment works: the refusals below are the Deny's
        with judged_as("arn:aws:iam::123456789012:role/ignored"), pytest.MonkeyPatch.context() as patch:
            # the worker's own Deny, without the bucket policy's help
            from moto.iam.access_control import PermissionResult
            from moto.s3.models import FakeBucket
            patch.setattr(FakeBucket, "get_permission", lambda *_: PermissionResult.NEUTRAL)
            assert not any(can(call, **kwargs) for call, kwargs in calls)
    finally:
        iam.detach_role_policy(RoleName=worker, PolicyArn=full)


def test_an_administrator_cannot_read_a_backup_until_the_bucket_policy_goes(cluster: Cluster) -> None:
    """`nobody else can read`: the bucket policy refuses an account administrator too (moto
    judges the admin's identity policy, `s3_policy` the bucket's); deleting the policy,
    which it leaves to the account, is how an administrator recovers (docs/aws.md)."""
    from s3_policy import evaluate

    s3 = cluster.backend.client("s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=BACKUPS)["Policy"])
    admin = "arn:aws:iam::123456789012:role/Admin"
    resource = f"arn:aws:s3:::{BACKUPS}/swarm/latest.tar.gz"
    assert evaluate(policy, "s3:GetObject", resource, {"aws:PrincipalArn": admin, "aws:SecureTransport": "true"}) \
        == "Deny"
    assert evaluate(policy, "s3:GetObject", resource, {"aws:PrincipalArn": role_arn(cluster, "manager"),
                                                       "aws:SecureTransport": "true"}) == "Neutral"
    assert evaluate(policy, "s3:GetObject", resource, {"aws:PrincipalArn": role_arn(cluster, "manager"),
                                                       "aws:SecureTransport": "false"}) == "Deny"
    assert evaluate(policy, "s3:DeleteBucketPolicy", f"arn:aws:s3:::{BACKUPS}",
                    {"aws:PrincipalArn": admin, "aws:SecureTransport": "true"}) == "Neutral"
