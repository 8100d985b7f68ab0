"""The raft backup bucket on AWS, read back from moto after the real program ran, and its
pure parts (name, policy, lifecycle) on their own."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from s3_policy import judged_as

from components.aws.backup import NONCURRENT_DAYS, PREFIX, backup_bucket_name, bucket_policy, lifecycle_rules
from components.common.names import LIMITS
from policies._userdata import decode_user_data
from swarmstack.config.load import read_stack_file
from swarmstack.engine.aws import AwsBackend
from swarmstack.engine.graph import Graph
from swarmstack.engine.run import backends_for, run_stack

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "swarmstack-prod-backups-123456789012-eu-west-1"


@dataclass
class Run:
    graph: Graph
    backend: AwsBackend
    key_arn: str


def _run(stack: str, mutate: Any = None) -> Iterator[Run]:
    config = copy.deepcopy(read_stack_file(stack, ROOT)[1])
    if mutate is not None:
        mutate(config["swarmstack:cluster"])
    with ExitStack() as exits:
        backends = backends_for(config, exits)
        backend = backends["aws"]
        assert isinstance(backend, AwsBackend)
        graph = run_stack(stack, config, ROOT, backends=backends)
        name = config["swarmstack:cluster"]["name"]
        kms = backend.client("kms")
        key = next(a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]
                   if a["AliasName"] == f"alias/swarmstack/{name}")
        yield Run(graph, backend, kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"])


@pytest.fixture(scope="module")
def prod() -> Iterator[Run]:
    yield from _run("prod-aws")


@pytest.fixture(scope="module")
def dev_with_backups() -> Iterator[Run]:
    yield from _run("dev-aws", lambda c: c.update(name="devbackups", backup={"enabled": True, "retentionDays": 3}))


def test_the_bucket_is_versioned_encrypted_with_the_cluster_key_and_private(prod: Run) -> None:
    s3 = prod.backend.client("s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": prod.key_arn}
    assert rule["BucketKeyEnabled"] is True
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
    ownership = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_backups_expire_after_the_retention_and_old_versions_soon(prod: Run) -> None:
    rules = prod.backend.client("s3").get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    expire, markers = rules
    assert expire["Filter"] == {"Prefix": PREFIX} and expire["Status"] == "Enabled"
    assert expire["Expiration"] == {"Days": 14}
    assert expire["NoncurrentVersionExpiration"]["NoncurrentDays"] == NONCURRENT_DAYS
    assert expire["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert markers["Expiration"] == {"ExpiredObjectDeleteMarker": True}


def test_the_policy_refuses_plain_http_and_everyone_but_the_managers(prod: Run) -> None:
    policy = json.loads(prod.backend.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"])
    manager_role = next(r for r in prod.graph.of_type("aws:iam/role:Role") if r.name == "prod-manager-role")
    tls, others = policy["Statement"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert others["Effect"] == "Deny" and others["Principal"] == "*"
    assert others["Resource"] == f"arn:aws:s3:::{BUCKET}/{PREFIX}*"  # the backups; the stack writes tools/
    assert others["Condition"] == {"StringNotEquals": {"aws:PrincipalArn": manager_role.outputs["arn"]}}
    assert {"s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*"} <= set(others["Action"])


def test_production_keeps_the_bucket_and_its_settings_on_destroy(prod: Run) -> None:
    children = [r for r in prod.graph.resources if r.type.startswith("aws:s3/") and r.name.startswith("prod-backups-")]
    assert len(children) == 8
    assert all(r.retain_on_delete for r in children)
    (bucket,) = [r for r in children if r.type == "aws:s3/bucket:Bucket"]
    assert bucket.inputs["bucket"] == BUCKET and bucket.inputs["forceDestroy"] is False


def test_other_stacks_delete_the_bucket_with_its_backups(dev_with_backups: Run) -> None:
    children = [r for r in dev_with_backups.graph.resources
                if r.type.startswith("aws:s3/") and "-backups-" in r.name]
    # The restore tools alone are left by a replacement (a manager launched before an update
    # reads its own); the bucket's force_destroy deletes them with it.
    assert children and [r.type for r in children if r.retain_on_delete] == ["aws:s3/bucketObjectv2:BucketObjectv2"]
    (bucket,) = [r for r in children if r.type == "aws:s3/bucket:Bucket"]
    assert bucket.inputs["forceDestroy"] is True
    rules = dev_with_backups.backend.client("s3").get_bucket_lifecycle_configuration(
        Bucket=bucket.inputs["bucket"])["Rules"]
    assert rules[0]["Expiration"] == {"Days": 3}


def test_only_the_managers_user_data_names_the_store(prod: Run) -> None:
    from components.aws.cluster import node_user_data
    from swarmstack.config.load import load_stack
    from userdata import params_for

    settings = load_stack("prod-aws", ROOT)
    manager = params_for(settings.cluster, settings.region, "manager", "managers", "0badcafe",
                         prod.key_arn, backup_store=f"s3://{BUCKET}")
    assert (manager.backup_store, manager.backup_schedule) == (f"s3://{BUCKET}", "17 3 * * *")
    worker = params_for(settings.cluster, settings.region, "worker", "general", "0badcafe", prod.key_arn)
    assert worker.backup_store == ""
    # what the program really rendered: the manager template carries the bucket, no worker's does
    rendered = {t.name: decode_user_data(t.inputs.get("userData"))
                for t in prod.graph.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    assert any(BUCKET in (text or "") for name, text in rendered.items() if "managers" in name)
    assert not any(BUCKET in (text or "") for name, text in rendered.items() if "managers" not in name)
    assert node_user_data  # the one function both the program and this test go through


def test_the_bucket_holds_the_managers_restore_tool_under_the_cluster_key(prod: Run) -> None:
    """`tools/restore-<sha256>.sh` is the restore tool rendered from the managers' parameters,
    whose key and sha256 their node script carries; written after the policy that lets the
    deployer write it and the encryption it is written under, and left in place when an
    update replaces it with another version (a manager launched before reads its own)."""
    from userdata import files_of, restore_tool, restore_tool_key, restore_tool_sha256
    from userdata.render import EC2_USER_DATA_LIMIT, NODE_SCRIPT

    (tool,) = prod.graph.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    key = tool.inputs["key"]
    assert tool.retain_on_delete and key == restore_tool_key(tool.inputs["content"])
    assert re.fullmatch(r"tools/restore-[0-9a-f]{16}\.sh", key), key
    s3 = prod.backend.client("s3")
    with judged_as(s3_caller(prod)):  # the deployer reads what it wrote (moto alone refuses everyone)
        head = s3.head_object(Bucket=BUCKET, Key=key)
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", prod.key_arn)
    assert head["BucketKeyEnabled"] is True
    (manager,) = [t for t in prod.graph.of_type("aws:ec2/launchTemplate:LaunchTemplate") if "managers" in t.name]
    user_data = decode_user_data(manager.inputs.get("userData"))
    script = files_of(user_data)[NODE_SCRIPT]
    assert f"readonly RESTORE_SHA256={hashlib.sha256(body.encode()).hexdigest()}\n" in script
    assert f"readonly RESTORE_TOOL=s3://{BUCKET}/{key}\n" in script
    assert "cmd_restore() {" in body and "restore_files() {" in body
    assert "cmd_restore() {" not in script and "restore_files() {" not in script
    from swarmstack.config.load import load_stack
    from userdata import params_for
    from userdata.params import address_pool_for

    settings = load_stack("prod-aws", ROOT)
    generation = script.split("readonly STORE_PREFIX=/swarmstack/prod/", 1)[1][:8]
    params = dataclasses.replace(params_for(settings.cluster, settings.region, "manager", "managers", generation,
                                            prod.key_arn, backup_store=f"s3://{BUCKET}"),
                                 address_pool=address_pool_for(settings.cluster.network.new.cidr))
    assert body == restore_tool(params) and restore_tool_sha256(params) in script
    assert len(base64.b64decode(manager.inputs["userData"])) <= EC2_USER_DATA_LIMIT  # as EC2 counts it
    (tool,) = [r for r in prod.graph.resources if r.type == "aws:s3/bucketObjectv2:BucketObjectv2"]
    assert tool.inputs["bucketKeyEnabled"] is True and tool.inputs["content"] == body
    urn = {r.name: r.urn for r in prod.graph.resources}
    assert {urn["prod-backups-policy"], urn["prod-backups-encryption"]} <= set(tool.dependencies)


def s3_caller(run: Run) -> str:
    return str(run.backend.client("sts").get_caller_identity()["Arn"])


def test_dev_without_backups_has_no_bucket_and_no_grant() -> None:
    # another name: the module's other runs keep their moto state until the module ends
    for run in _run("dev-aws", lambda c: c.update(name="plain")):
        _no_backups(run)


def _no_backups(run: Run) -> None:
    assert not [r for r in run.graph.resources if "-backups-" in r.name]
    assert not run.graph.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    for template in run.graph.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert "readonly RESTORE_SHA256=''" in decode_user_data(template.inputs.get("userData"))
    for policy in run.graph.of_type("aws:iam/rolePolicy:RolePolicy"):
        assert "s3:" not in json.dumps(policy.inputs["policy"])
    assert "backupStore" not in run.graph.outputs


def test_the_bucket_name_is_stable_and_fits_for_any_cluster() -> None:
    assert backup_bucket_name("prod", "123456789012", "eu-west-1") == BUCKET
    long = backup_bucket_name("a" * 28, "123456789012", "ap-southeast-2")
    assert len(long) == LIMITS["s3-bucket"] and long == backup_bucket_name("a" * 28, "123456789012", "ap-southeast-2")
    assert long != backup_bucket_name("a" * 27 + "b", "123456789012", "ap-southeast-2")


def test_the_lifecycle_refuses_a_retention_under_a_day() -> None:
    with pytest.raises(ValueError, match="retention_days 0 must be at least 1"):
        lifecycle_rules(0)
    assert lifecycle_rules(3650)[0]["expiration"] == {"days": 3650}


def test_the_policy_leaves_the_bucket_settings_to_the_account() -> None:
    """An administrator locked out of the backups recovers by deleting the bucket policy:
    the policy must never deny that (nor any bucket-level call) to the account."""
    policy = bucket_policy("arn:aws:s3:::b", "arn:aws:iam::123456789012:role/m")
    denied = [a for s in policy["Statement"] if s.get("Condition", {}).get("StringNotEquals")
              for a in s["Action"]]
    assert not any(a.startswith("s3:") and "Bucket" in a for a in denied)
