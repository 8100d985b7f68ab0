"""The private registry on AWS (issue 12): `prod-aws` with `registry` on, deployed into moto.

The repositories are read back from moto (scan on push, tag mutability, the cluster key,
the lifecycle policy); then each node role's credentials call ECR while moto evaluates
IAM, with the image calls judged on the repository's ARN (`moto_iam.repository_resources`):
a node may log in and pull from the cluster's repositories, and from no other repository
in the account. What moto cannot show: ECR's own use of the key (its grants) and a real
`docker pull` (docs/registry.md).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto_iam import repository_resources

from components.aws.registry import PULL_ACTIONS, lifecycle_policy, pull_statements, repository_arn
from swarmstack.config.load import read_stack_file
from swarmstack.engine.aws import AwsBackend
from swarmstack.engine.graph import Graph
from swarmstack.engine.run import backends_for, run_stack

ROOT = Path(__file__).resolve().parents[2]
REPOSITORIES = ["app", "team/api"]


@dataclass
class Deployed:
    backend: AwsBackend
    graph: Graph
    key_arn: str
    roles: dict[str, str]


def registry_config(registry: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(read_stack_file("prod-aws", ROOT)[1])
    config["swarmstack:cluster"]["registry"] = registry
    return config


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    config = registry_config({"enabled": True, "repositories": REPOSITORIES, "immutableTags": True,
                              "keepImages": 20})
    with ExitStack() as exits:
        backends = backends_for(config, exits)
        backend = backends["aws"]
        assert isinstance(backend, AwsBackend)
        graph = run_stack("prod-aws", config, ROOT, backends=backends)
        kms, iam = backend.client("kms"), backend.client("iam")
        key = next(a["TargetKeyId"] for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/swarmstack/prod")
        roles = {kind: role["RoleName"] for role in iam.list_roles()["Roles"] for kind in ("manager", "worker")
                 if f"prod-{kind}-policy" in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]}
        assert set(roles) == {"manager", "worker"}
        # another repository of the same account, which no node may pull from
        backend.client("ecr").create_repository(repositoryName="other/app")
        yield Deployed(backend, graph, kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"], roles)


def test_pull_statements_log_in_on_star_and_pull_from_the_named_repositories_only() -> None:
    arns = [repository_arn("aws", "eu-west-1", "123456789012", "prod/app")]
    assert pull_statements(arns) == [
        {"Sid": "RegistryLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "PullFromTheClusterRepositories", "Effect": "Allow", "Action": list(PULL_ACTIONS),
         "Resource": ["arn:aws:ecr:eu-west-1:123456789012:repository/prod/app"]}]
    assert pull_statements([]) == []
    assert not any(a.startswith(("ecr:Put", "ecr:Upload", "ecr:Delete", "ecr:Initiate")) for a in PULL_ACTIONS)


def test_the_lifecycle_policy_keeps_the_newest_n_images() -> None:
    rule = lifecycle_policy(7)["rules"][0]
    assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 7}
    assert rule["action"] == {"type": "expire"}


def test_each_repository_is_scanned_immutable_under_the_cluster_key_and_pruned(deployed: Deployed) -> None:
    ecr = deployed.backend.client("ecr")
    found = {r["repositoryName"]: r for r in ecr.describe_repositories()["repositories"]}
    for name in REPOSITORIES:
        repo = found[f"prod/{name}"]
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": deployed.key_arn}
        policy = json.loads(ecr.get_lifecycle_policy(repositoryName=f"prod/{name}")["lifecyclePolicyText"])
        assert policy == lifecycle_policy(20)


def test_the_outputs_give_the_registry_and_each_repository(deployed: Deployed) -> None:
    (cluster,) = deployed.graph.of_type("swarmstack:aws:Cluster")
    outputs = cluster.outputs
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert outputs["registry"] == host
    assert outputs["registryRepositories"] == {name: f"{host}/prod/{name}" for name in REPOSITORIES}


def node_ecr(deployed: Deployed, role: str) -> Any:
    iam, sts = deployed.backend.client("iam"), deployed.backend.client("sts")
    arn = iam.get_role(RoleName=deployed.roles[role])["Role"]["Arn"]
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="i-0123456789abcdef0")["Credentials"]
    return boto3.client("ecr", region_name=deployed.backend.region, aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def can(call: Any, **kwargs: Any) -> bool:
    """Whether IAM lets the call through (moto evaluating the caller's policies)."""
    from moto.core import enable_iam_authentication

    with enable_iam_authentication(), repository_resources():
        try:
            call(**kwargs)
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 403 and "AccessDenied" in str(err):
                return False
            raise
    return True


PULLS = {"batch_get_image": {"imageIds": [{"imageTag": "1.0"}]},
         "batch_check_layer_availability": {"layerDigests": ["sha256:" + "0" * 64]}}


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_a_node_pulls_from_the_cluster_repositories_and_no_other(deployed: Deployed, role: str) -> None:
    ecr = node_ecr(deployed, role)
    assert can(ecr.get_authorization_token)
    for call, kwargs in PULLS.items():
        for name in REPOSITORIES:
            assert can(getattr(ecr, call), repositoryName=f"prod/{name}", **kwargs), (call, name)
        assert not can(getattr(ecr, call), repositoryName="other/app", **kwargs), call
    # and pushes nowhere, its own repositories included
    assert not can(ecr.put_image, repositoryName="prod/app", imageManifest="{}", imageTag="evil")
    assert not can(ecr.initiate_layer_upload, repositoryName="prod/app")


def test_without_the_wrapper_moto_judges_ecr_calls_against_star(deployed: Deployed) -> None:
    """Why `repository_resources` exists: left alone, moto matches BatchGetImage against "*",
    which the node's Allow on its repositories' ARNs never covers."""
    from moto.core import enable_iam_authentication

    ecr = node_ecr(deployed, "worker")
    with enable_iam_authentication(), pytest.raises(ClientError, match="AccessDenied"):
        ecr.batch_get_image(repositoryName="prod/app", imageIds=[{"imageTag": "1.0"}])


def test_without_a_registry_a_node_role_holds_no_ecr_permission() -> None:
    from components.aws.identity import node_policy

    for role in ("manager", "worker"):
        document = node_policy(role, "aws", "eu-west-1", "123456789012", "prod", [], "arn:aws:kms:k", "0a1b2c3d")
        assert "ecr:" not in json.dumps(document), role


def test_the_plan_shows_the_repositories_and_the_registry_address(deployed: Deployed) -> None:
    from swarmstack.plan import render_text

    text = render_text(deployed.graph, "eu-west-1")
    assert "aws.Registry prod-registry" in text
    assert "prod/app" in text and "IMMUTABLE" in text
    assert "123456789012.dkr.ecr.eu-west-1.amazonaws.com" in text


def test_the_pack_passes_the_registry_and_its_pull_grants(deployed: Deployed) -> None:
    """The registry adds no finding: its repositories pass the registry rules, and the
    node roles' `ecr:GetAuthorizationToken` on "*" is one of the pack's star-only actions."""
    from swarmstack.policy import evaluate

    found = [f for f in evaluate(deployed.graph) if "ecr" in f.type or "registry" in f.rule or "ecr" in f.message]
    assert found == []
    assert not [f for f in evaluate(deployed.graph) if f.level == "mandatory"]
