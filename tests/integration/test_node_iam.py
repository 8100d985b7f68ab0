"""What each node role may do, evaluated by moto with the node's own credentials.

The harness enforces IAM (`node_iam.py`): each node signs with its role's session, which
the fake IMDS serves it, and the roles hold the program's own policy documents. Here the
nodes are not booted (no dockerd): each check runs the AWS CLI inside a node's namespace
with the node's environment, as the node script does, or boto3 with the node role's
credentials. That the policies are also sufficient is `test_bootstrap.py`'s proof: the
whole flow runs under the same enforcement.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import require_harness

pytestmark = pytest.mark.integration

SECRET_PATHS = ("init", "managers", "tokens/worker", "tokens/manager", "tls/ca-cert", "tls/server-cert",
                "tls/server-key")
HOOK = "swarmstack-drain"


@dataclass
class Cluster:
    harness: Any
    bundle: Any
    manager: Any
    worker: Any

    def path(self, name: str) -> str:
        h = self.harness
        return f"/swarmstack/{h.cluster}/{name}" if name.startswith("tls/") else \
            f"/swarmstack/{h.cluster}/{h.generation}/{name}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require_harness()
    from certs import make_bundle
    from harness import SUBNET, Harness

    h = Harness()
    try:
        assert h.cloud is not None
        bundle = make_bundle([f"{SUBNET}.{i}" for i in range(10, 20)])
        h.provision(1, {"general": 1}, tls=bundle.ssm_values())
        (manager,), (worker,) = h.add_nodes("managers"), h.add_nodes("general")
        found = Cluster(h, bundle, manager, worker)
        # the state the first manager writes (the tokens under the cluster key)
        for name in ("init", "managers"):
            h.cloud.aws("ssm", "put_parameter", Name=found.path(name), Type="String", Value=manager.ip)
        for role in ("manager", "worker"):
            h.cloud.aws("ssm", "put_parameter", Name=found.path(f"tokens/{role}"), Type="SecureString",
                        KeyId=h.key_arn, Value=f"SWMTKN-1-{role}")
        yield found
    finally:
        h.close()


def node_aws(node: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """The AWS CLI in the node's namespace with the node's environment (its credentials
    come from the fake IMDS, as on an instance)."""
    from harness import MOTO_URL, REGION, Network, aws_cli

    cli = aws_cli()
    assert cli is not None
    return subprocess.run(["nsenter", f"--net={Network.path(node.ns)}", cli, "--endpoint-url", MOTO_URL,
                           "--region", REGION, "--output", "json", *args],
                          env=node.env(), capture_output=True, text=True, timeout=60)


def refused(result: subprocess.CompletedProcess[str]) -> bool:
    """The call failed because IAM refused it (and not for any other reason)."""
    if result.returncode == 0:
        return False
    assert "AccessDenied" in result.stderr, result.stderr
    return True


def as_node(cluster: Cluster, role: str, service: str, operation: str, **kwargs: Any) -> bool:
    """One boto3 call with `role`'s session (what its nodes get from IMDS): whether IAM let
    it through (any answer but AccessDenied)."""
    from botocore.exceptions import ClientError
    from harness import MOTO_URL, REGION

    def run() -> bool:
        import boto3

        client = boto3.client(service, endpoint_url=MOTO_URL, region_name=REGION,
                              **cluster.harness.cloud.node_credentials(role).boto())
        try:
            getattr(client, operation)(**kwargs)
        except ClientError as err:
            if "AccessDenied" in str(err):
                return False
            raise
        return True

    return bool(cluster.harness.cloud.call(run))


def can_read(cluster: Cluster, role: str, name: str) -> bool:
    """GetParameter (decrypted) as `role`'s session, judged by moto."""
    return as_node(cluster, role, "ssm", "get_parameter", Name=cluster.path(name), WithDecryption=True)


def test_each_node_calls_aws_as_its_own_role(cluster: Cluster) -> None:
    from node_iam import role_name

    for node in (cluster.manager, cluster.worker):
        result = node_aws(node, "sts", "get-caller-identity")
        assert result.returncode == 0, result.stderr
        assert f":assumed-role/{role_name(node.role)}/" in json.loads(result.stdout)["Arn"]


def test_what_each_role_reads_of_the_swarms_secrets(cluster: Cluster) -> None:
    evaluated = {role: {name: can_read(cluster, role, name) for name in SECRET_PATHS}
                 for role in ("manager", "worker")}
    print(json.dumps(evaluated, indent=1))  # the matrix, for the report (pytest -s)
    assert evaluated == {
        "manager": dict.fromkeys(SECRET_PATHS, True),
        "worker": {"init": True, "managers": True, "tokens/worker": True, "tokens/manager": False,
                   "tls/ca-cert": False, "tls/server-cert": False, "tls/server-key": False}}


def test_a_worker_is_refused_the_manager_token_and_the_tls_key(cluster: Cluster) -> None:
    """On the node, as the node script calls: the AWS CLI with the credentials from IMDS."""
    worker, manager = cluster.worker, cluster.manager
    for name in ("tokens/manager", "tls/server-key"):
        assert refused(node_aws(worker, "ssm", "get-parameter", "--with-decryption", "--name", cluster.path(name)))
    token = node_aws(manager, "ssm", "get-parameter", "--with-decryption", "--name", cluster.path("tokens/manager"))
    assert token.returncode == 0, token.stderr
    assert json.loads(token.stdout)["Parameter"]["Value"] == "SWMTKN-1-manager"
    # the managers' one TLS call (every name is judged), and a write
    tls = [cluster.path(f"tls/{name}") for name in ("ca-cert", "server-cert", "server-key")]
    assert not as_node(cluster, "worker", "ssm", "get_parameters", Names=tls, WithDecryption=True)
    assert as_node(cluster, "manager", "ssm", "get_parameters", Names=tls, WithDecryption=True)
    assert not as_node(cluster, "worker", "ssm", "put_parameter", Name=cluster.path("init"), Type="String",
                       Value="x", Overwrite=True)


def test_a_worker_completes_only_its_own_groups_lifecycle_actions(cluster: Cluster) -> None:
    h, worker, manager = cluster.harness, cluster.worker, cluster.manager
    for node in (manager, worker):
        h.cloud.aws("autoscaling", "terminate_instance_in_auto_scaling_group", InstanceId=node.instance_id,
                    ShouldDecrementDesiredCapacity=True)
    assert refused(node_aws(worker, "autoscaling", "complete-lifecycle-action", "--lifecycle-hook-name", HOOK,
                            "--auto-scaling-group-name", manager.group, "--instance-id", manager.instance_id,
                            "--lifecycle-action-result", "CONTINUE"))
    action = {"LifecycleHookName": HOOK, "AutoScalingGroupName": manager.group, "InstanceId": manager.instance_id}
    assert not as_node(cluster, "worker", "autoscaling", "record_lifecycle_action_heartbeat", **action)
    assert not as_node(cluster, "worker", "autoscaling", "set_instance_health", InstanceId=manager.instance_id,
                       HealthStatus="Unhealthy")
    assert h.cloud.instance_state(manager.instance_id) == "running"

    done = node_aws(worker, "autoscaling", "complete-lifecycle-action", "--lifecycle-hook-name", HOOK,
                    "--auto-scaling-group-name", worker.group, "--instance-id", worker.instance_id,
                    "--lifecycle-action-result", "CONTINUE")
    assert done.returncode == 0, done.stderr
    assert h.cloud.instance_state(worker.instance_id) == "terminated"
    # managers complete on every group: their own here
    assert as_node(cluster, "manager", "autoscaling", "complete_lifecycle_action", **action,
                   LifecycleActionResult="CONTINUE")
    assert h.cloud.instance_state(manager.instance_id) == "terminated"
