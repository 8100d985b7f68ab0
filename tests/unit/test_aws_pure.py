"""The pure parts of the AWS components: architectures, refresh settings, policies,
prune commands, schedules, names. No Pulumi, no moto."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.aws.cluster import dashboard_url, shell_command
from components.aws.load_balancer import access_log_bucket_policy
from components.aws.maintenance import prune_script
from components.aws.network import subnet_problem
from components.aws.nodes import (
    architecture,
    default_image_parameter,
    lifecycle_policy,
    pool_architecture,
    refresh_preferences,
)
from components.aws.observability import dashboard_body
from components.aws.store import key_policy
from components.aws.tls import server_names
from components.common.managers import quorum
from components.common.prune import prune_commands
from swarmstack.config.cron import parse_cron, ssm_association_problem, to_aws
from swarmstack.engine.aws import check_instance_refresh, check_lifecycle_hook, check_schedule_expression


@pytest.mark.parametrize(("instance_type", "arch"), [
    ("t3.medium", "x86_64"), ("m6i.large", "x86_64"), ("m6a.large", "x86_64"), ("g5.xlarge", "x86_64"),
    ("t4g.small", "arm64"), ("m7gd.large", "arm64"), ("c7gn.xlarge", "arm64"), ("g5g.xlarge", "arm64"),
    ("im4gn.large", "arm64"), ("r8g.large", "arm64"), ("x2gd.medium", "arm64"), ("c6in.large", "x86_64"),
])
def test_graviton_types_are_arm64(instance_type: str, arch: str) -> None:
    assert architecture(instance_type) == arch


def test_a_pool_has_one_architecture_and_the_default_image_follows_it() -> None:
    assert pool_architecture(["m7g.large", "c7g.large"]) == "arm64"
    assert default_image_parameter("arm64").endswith("al2023-ami-kernel-default-arm64")
    assert default_image_parameter("x86_64") == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    with pytest.raises(ValueError, match="mix x86_64 and arm64"):
        pool_architecture(["m6i.large", "m7g.large"])


@settings(deadline=None)
@given(st.sampled_from([1, 3, 5, 7]))
def test_manager_refresh_replaces_exactly_one_manager_at_a_time(count: int) -> None:
    prefs = refresh_preferences("manager", count)
    assert prefs["min_healthy_percentage"] == 100  # never below the current size: quorum kept
    extra = math.floor(prefs["max_healthy_percentage"] * count / 100) - count
    assert extra == 1
    checkpoints = prefs["checkpoint_percentages"]
    assert len(checkpoints) == count and checkpoints[-1] == 100 and checkpoints == sorted(set(checkpoints))
    settings = {"strategy": "Rolling", "preferences": {
        "minHealthyPercentage": prefs["min_healthy_percentage"],
        "maxHealthyPercentage": prefs["max_healthy_percentage"],
        "checkpointPercentages": checkpoints, "checkpointDelay": prefs["checkpoint_delay"],
        "scaleInProtectedInstances": prefs["scale_in_protected_instances"]}}
    assert check_instance_refresh(settings, has_template=True) is None
    assert quorum(count) == count // 2 + 1


@settings(deadline=None)
@given(st.integers(0, 1000))
def test_worker_refresh_launches_before_it_terminates(count: int) -> None:
    prefs = refresh_preferences("worker", count)
    assert prefs["min_healthy_percentage"] == 100
    assert 100 < prefs["max_healthy_percentage"] <= 200
    assert math.floor(prefs["max_healthy_percentage"] * max(count, 1) / 100) > max(count, 1) - 1


def test_the_key_lets_cloudwatch_logs_use_it_for_the_clusters_groups_only() -> None:
    plain = key_policy("aws", "eu-west-1", "123456789012", "prod", for_logs=False)
    assert [s["Sid"] for s in plain["Statement"]] == ["AccountAdministers", "CloudWatchAlarmsToTheEncryptedTopic"]
    (logs,) = [s for s in key_policy("aws", "eu-west-1", "123456789012", "prod", for_logs=True)["Statement"]
               if s["Sid"] == "CloudWatchLogsForTheClusterGroups"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == \
        "arn:aws:logs:eu-west-1:123456789012:log-group:/swarmstack/prod/*"


def test_prune_never_combines_volumes_with_an_age_filter() -> None:
    assert not [c for c in prune_commands("24h", volumes=False) if "volume" in c]
    both = prune_commands("1h30m", volumes=True)
    assert both[-1] == "docker volume prune --all --force"
    assert all("until=1h30m" in c for c in both[:-1]) and not [c for c in both if "--volumes" in c]
    assert not any("--volumes" in c for c in both)
    script = prune_script("24h", False, "/swarmstack/prod/prune", "eu-west-1")
    assert script.startswith("#!/bin/bash\n") and "--log-group-name /swarmstack/prod/prune" in script
    assert "volume prune" not in script


crons = st.builds(
    lambda m, h, dom, dow: f"{m} {h} {dom} * {dow}",
    st.sampled_from(["0", "42", "*/15", "5,35", "0-10/5"]),
    st.sampled_from(["*", "1", "*/6", "1-5", "0,12"]),
    st.sampled_from(["*", "1", "1,15", "*/2"]),
    st.sampled_from(["*", "MON", "1-5", "0", "SAT,SUN"]),
).filter(lambda text: text.split()[2] == "*" or text.split()[4] == "*")


@settings(deadline=None)
@given(crons)
def test_every_schedule_the_config_accepts_is_one_ssm_accepts(expression: str) -> None:
    parsed = parse_cron(expression)
    if ssm_association_problem(parsed) is None:  # what `swarmstack validate` lets through on AWS
        translated = to_aws(parsed)
        assert check_schedule_expression(translated) is None, translated
    else:
        with pytest.raises(ValueError):
            to_aws(parsed)


@pytest.mark.parametrize("expression", ["cron(42 1 * * ? *)", "cron(42 1 ? * * *)", "cron(0 3 ? * SUN *)",
                                        "cron(30 2 ? * MON-FRI *)", "cron(0/30 * * * ? *)", "cron(0 0/1 * * ? *)",
                                        "cron(0 0/12 * * ? *)", "cron(15 13 ? * MON *)", "rate(30 minutes)",
                                        "rate(1 hour)", "rate(15 days)"])
def test_schedules_ssm_takes_for_associations(expression: str) -> None:
    assert check_schedule_expression(expression) is None


@pytest.mark.parametrize(("expression", "problem"), [
    ("cron(0 1 * * * *)", "exactly one of day-of-month and day-of-week must be ?"),
    ("cron(0 1 ? * ? *)", "exactly one of day-of-month and day-of-week must be ?"),
    ("0 1 * * *", "must be cron("),
    ("cron(61 1 * * ? *)", "minute 61 is out of range"),
    ("rate(5 minutes)", "at least 30 minutes"),
    ("rate(1 hours)", "singular for 1"),
    ("rate(31 days)", "shorter than 31 days"),
    # what the translation used to emit: lists, months, days of the month, every 6 hours
    ("cron(0 0,4,8,12,16,20 * * ? *)", "State Manager runs associations only every 30 minutes"),
    ("cron(0 0 * 1,7 ? *)", "associations take no month"),
    ("cron(15 4 1 * ? *)", "associations take no day of the month"),
    ("cron(30 2 ? * MON,TUE,WED,THU,FRI *)", "one day or one range of days"),
    ("cron(0 0/6 * * ? *)", "State Manager runs associations only every 30 minutes"),
    ("cron(0/15 * * * ? *)", "State Manager runs associations only every 30 minutes"),
    ("cron(0 0/4 ? * MON-FRI *)", "State Manager runs associations only every 30 minutes"),
])
def test_schedules_ssm_refuses(expression: str, problem: str) -> None:
    assert problem in (check_schedule_expression(expression) or "")


@pytest.mark.parametrize(("hook", "problem"), [
    ({"name": "swarmstack-drain", "lifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
      "heartbeatTimeout": 29}, "outside 30 to 7200"),
    ({"name": "swarmstack-drain", "lifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
      "heartbeatTimeout": 7201.0}, "outside 30 to 7200"),
    ({"name": "drain", "lifecycleTransition": "autoscaling:EC2_INSTANCE_STOPPING"}, "lifecycleTransition"),
    ({"name": "bad name!", "lifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}, "hook name"),
])
def test_lifecycle_hooks_auto_scaling_refuses(hook: dict, problem: str) -> None:
    assert problem in (check_lifecycle_hook(hook) or "")


def test_instance_refresh_settings_auto_scaling_refuses() -> None:
    def refresh(**prefs: object) -> dict:
        return {"strategy": "Rolling", "preferences": prefs}
    assert "at most 100" in check_instance_refresh(refresh(minHealthyPercentage=50, maxHealthyPercentage=200), True)
    too_high = refresh(minHealthyPercentage=100, maxHealthyPercentage=250)
    assert "outside 100 to 200" in check_instance_refresh(too_high, True)
    assert "needs minHealthyPercentage" in check_instance_refresh(refresh(maxHealthyPercentage=150), True)
    assert "rising" in check_instance_refresh(refresh(checkpointPercentages=[50, 20, 100]), True)
    assert check_instance_refresh({"strategy": "AllAtOnce"}, True) == "strategy must be Rolling"


def test_existing_subnets_are_one_per_zone_in_the_vpc() -> None:
    ok = [("subnet-a", "vpc-1", "eu-west-1a"), ("subnet-b", "vpc-1", "eu-west-1b")]
    assert subnet_problem("vpc-1", ok) is None
    assert "share zone eu-west-1a" in subnet_problem("vpc-1", [*ok, ("subnet-c", "vpc-1", "eu-west-1a")])
    assert "is in vpc-2" in subnet_problem("vpc-1", [*ok, ("subnet-c", "vpc-2", "eu-west-1c")])


def test_the_server_certificate_names() -> None:
    assert server_names("prod-nlb.elb.amazonaws.com") == (["prod-nlb.elb.amazonaws.com", "localhost"], ["127.0.0.1"])
    assert server_names(None) == (["localhost"], ["127.0.0.1"])


def test_what_a_person_pastes() -> None:
    command = shell_command("prod", "eu-west-1")
    assert command.startswith("aws ssm start-session --region eu-west-1 --target $(aws ec2 describe-instances")
    assert "Name=tag:swarmstack:role,Values=manager" in command and "instance-state-name,Values=running" in command
    assert dashboard_url("eu-west-1", "swarmstack-prod") == \
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards:name=swarmstack-prod"


def test_the_dashboard_shows_every_group_and_target() -> None:
    body = dashboard_body("prod", "eu-west-1", "prod-m", {"general": "prod-g"}, "net/x/1",
                          {"tcp-80": "targetgroup/t/2"})
    text = json.dumps(body)
    assert all(name in text for name in ("prod-m", "prod-g", "targetgroup/t/2", "swarmstack/prod"))
    assert len(dashboard_body("prod", "eu-west-1", "prod-m", {}, None, {})["widgets"]) == 3


def test_the_access_log_bucket_takes_log_delivery_for_its_account_only() -> None:
    policy = access_log_bucket_policy("aws", "123456789012", "arn:aws:s3:::logs")
    write = policy["Statement"][0]
    assert write["Resource"] == "arn:aws:s3:::logs/nlb/AWSLogs/123456789012/*"
    assert write["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert policy["Statement"][2]["Effect"] == "Deny"


@pytest.mark.parametrize("volumes", [False, True])
def test_the_prune_script_is_shellcheck_clean(volumes: bool, tmp_path: Any) -> None:
    import shutil
    import subprocess

    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    script = tmp_path / "prune.sh"
    script.write_text(prune_script("24h", volumes, "/swarmstack/prod/prune", "eu-west-1") + "\n")
    result = subprocess.run(["shellcheck", "--shell=bash", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_the_lifecycle_grant_names_one_group_and_the_three_calls_a_node_makes() -> None:
    """`lifecycle_policy` is what each node group grants (and what the integration harness
    enforces): complete, extend, mark unhealthy — on that group only, never on "*"."""
    document = lifecycle_policy("aws", "eu-west-1", "123456789012", "prod-general-asg")
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["autoscaling:CompleteLifecycleAction",
                                           "autoscaling:RecordLifecycleActionHeartbeat",
                                           "autoscaling:SetInstanceHealth"]
    assert statement["Resource"] == ("arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:"
                                     "autoScalingGroupName/prod-general-asg")
