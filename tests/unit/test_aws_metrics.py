"""Node metrics on AWS: the CloudWatch agent's configuration and install script (run here
against a stand-in agent), and the graph with `metrics.enabled`, read back from moto."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_aws_cluster import Deployed, deploy, shipped
from test_userdata import tool_path

from components.aws.identity import node_policy
from components.aws.metrics import GROUP, agent_config, agent_script, alarm_specs
from components.aws.observability import dashboard_body, namespace
from components.common.metrics import DISK_PATHS

NS = namespace("prod")


def published(config: dict[str, Any]) -> set[tuple[str, frozenset[str]]]:
    """(metric name, dimension names) of every aggregate the agent publishes: the agent names
    a metric `<plugin>_<measurement>` (a measurement may be written with its prefix); disks carry `path`, the others no dimension of their own."""
    metrics = config["metrics"]
    out = set()
    for plugin, spec in metrics["metrics_collected"].items():
        own = {"path"} if plugin == "disk" else set()
        for measurement in spec["measurement"]:
            for dims in metrics["aggregation_dimensions"]:
                if set(dims) - {GROUP} <= own:
                    name = measurement if measurement.startswith(f"{plugin}_") else f"{plugin}_{measurement}"
                    out.add((name, frozenset(dims)))
    return out


def test_every_alarm_watches_an_aggregate_the_agent_publishes() -> None:
    config = agent_config(NS)
    assert config["metrics"]["namespace"] == NS
    assert config["metrics"]["append_dimensions"][GROUP] == "${aws:AutoScalingGroupName}"
    aggregates = published(config)
    specs = alarm_specs("general", 80, 90)
    assert {s.metric for s in specs} == {"disk_used_percent", "mem_used_percent"}
    for spec in specs:
        assert (spec.metric, frozenset({GROUP, *spec.dimensions})) in aggregates, spec
    assert {s.dimensions.get("path") for s in specs if s.metric == "disk_used_percent"} == set(DISK_PATHS)
    (memory,) = [s for s in specs if s.metric == "mem_used_percent"]
    assert memory.period * memory.periods == 15 * 60 and memory.threshold == 90


def fake(path: Path, body: str) -> None:
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


def run_agent_script(tmp_path: Path, script: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The script with the agent's directory moved under `tmp_path`, and `dnf` standing in
    for the package manager (it installs a stand-in `amazon-cloudwatch-agent-ctl`)."""
    agent = tmp_path / "agent"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    fake(bin_dir / "dnf", f"echo \"dnf $*\" >>{calls}\nmkdir -p {agent}/bin\n"
         f"cat >{agent}/bin/amazon-cloudwatch-agent-ctl <<'EOF'\n#!/bin/bash\necho \"ctl $*\" >>{calls}\n"
         f"if [ \"$2\" = status ]; then [ -f {tmp_path}/running ] && echo '{{\"status\": \"running\"}}' "
         f"|| echo '{{\"status\": \"stopped\"}}'; else touch {tmp_path}/running; fi\nEOF\n"
         f"chmod +x {agent}/bin/amazon-cloudwatch-agent-ctl")
    text = script.replace("/opt/aws/amazon-cloudwatch-agent", str(agent))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", text], capture_output=True, text=True, env=env, timeout=30)
    lines = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return result, lines


def test_the_agent_script_installs_once_and_restarts_only_on_a_change(tmp_path: Path) -> None:
    script = agent_script(NS, "eu-west-1")
    result, calls = run_agent_script(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert calls[0] == "dnf install -y amazon-cloudwatch-agent"
    assert calls[-1].startswith("ctl -a fetch-config -m ec2 -s -c file:")
    written = json.loads((tmp_path / "agent/etc/swarmstack.json").read_text())
    assert written == agent_config(NS)

    result, calls = run_agent_script(tmp_path, script)  # State Manager's next run: nothing to do
    assert result.returncode == 0, result.stderr
    assert calls == ["ctl -a status"]
    assert "runs with this configuration" in result.stdout

    (tmp_path / "running").unlink()  # the agent stopped: started again
    result, calls = run_agent_script(tmp_path, script)
    assert result.returncode == 0 and calls[-1].startswith("ctl -a fetch-config")

    result, calls = run_agent_script(tmp_path, agent_script(namespace("other"), "eu-west-1"))
    assert result.returncode == 0 and calls[-1].startswith("ctl -a fetch-config")  # a new configuration
    assert not list((tmp_path / "agent/etc").glob("swarmstack.json.*"))  # no temporary file left


def test_the_agent_script_is_shellcheck_clean(tmp_path: Path) -> None:
    shellcheck = tool_path("shellcheck")  # skips, or fails under CI=true, without it
    file = tmp_path / "agent.sh"
    file.write_text(agent_script(NS, "eu-west-1"))
    result = subprocess.run([shellcheck, "--severity=style", str(file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert "https://amazoncloudwatch-agent-eu-west-1.s3.eu-west-1.amazonaws.com/" in file.read_text()


def test_node_roles_put_metrics_into_their_own_namespace_only() -> None:
    args = ("aws", "eu-west-1", "123456789012", "prod", [], "arn:aws:kms:eu-west-1:123456789012:key/k", "g")
    for role in ("manager", "worker"):
        statements = node_policy(role, *args, metrics_namespace=NS)["Statement"]  # type: ignore[arg-type]
        (put,) = [s for s in statements if "cloudwatch:PutMetricData" in json.dumps(s["Action"])]
        assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": NS}}
        without = node_policy(role, *args)["Statement"]  # type: ignore[arg-type]
        assert "cloudwatch:" not in json.dumps(without) and "ec2:DescribeTags" not in json.dumps(without)


def test_the_dashboard_shows_node_metrics_only_when_they_exist() -> None:
    off = dashboard_body("prod", "eu-west-1", "m", {"general": "w"}, None, {})
    on = dashboard_body("prod", "eu-west-1", "m", {"general": "w"}, None, {}, node_metrics=True)
    titles = {w["properties"]["title"] for w in on["widgets"]} - {w["properties"]["title"] for w in off["widgets"]}
    assert titles == {"Memory used %, fullest node", "Root disk used %, fullest node", "Swap used %, fullest node"}
    memory = next(w for w in on["widgets"] if w["properties"]["title"].startswith("Memory"))
    assert [m[:4] for m in memory["properties"]["metrics"]] == [
        [NS, "mem_used_percent", GROUP, "m"], [NS, "mem_used_percent", GROUP, "w"]]


@pytest.fixture(scope="module")
def with_metrics() -> Deployed:
    config = shipped("prod-aws")
    config["swarmstack:cluster"]["metrics"] = {"enabled": True, "diskAlarmPercent": 75}
    return deploy("prod-aws", config)


def test_metrics_on_installs_the_agent_everywhere_and_alarms_per_group(with_metrics: Deployed) -> None:
    cfg = with_metrics.cluster
    ns = namespace(cfg.name)
    agents = [a for a in with_metrics.aws["associations"] if a["associationName"].endswith("-metrics-agent")]
    (agent,) = agents
    assert agent["name"] == "AWS-RunShellScript" and agent["scheduleExpression"] == "rate(30 minutes)"
    assert agent["targets"] == [{"key": "tag:swarmstack:cluster", "values": [cfg.name]}]
    assert agent["parameters"]["commands"] == agent_script(ns, with_metrics.config["aws:region"])
    groups = {"managers": with_metrics.graph.outputs["managerGroup"], **with_metrics.graph.outputs["workerGroups"]}
    alarms = {name: a for name, a in with_metrics.aws["alarms"].items() if a["Namespace"] == ns
              and a["MetricName"] in ("disk_used_percent", "mem_used_percent")}
    assert len(alarms) == 3 * len(groups)
    topic = with_metrics.graph.outputs["alarmTopicArn"]
    for pool, group in groups.items():
        root = alarms[f"swarmstack-{cfg.name}-{pool}-disk-root"]
        assert {d["Name"]: d["Value"] for d in root["Dimensions"]} == {GROUP: group, "path": "/"}
        assert (root["Threshold"], root["Statistic"], root["AlarmActions"]) == (75, "Maximum", [topic])
        memory = alarms[f"swarmstack-{cfg.name}-{pool}-memory"]
        assert (memory["Threshold"], memory["Period"], memory["EvaluationPeriods"]) == (90, 60, 15)
    nodes = [r for n, r in with_metrics.aws["roles"].items()
             if "flow" not in n and any(p.endswith("policy") for p in r["inline"])]
    assert len(nodes) == 2
    for role in nodes:
        text = json.dumps(role["inline"])
        assert f'"cloudwatch:namespace": "{ns}"' in text and "ec2:DescribeTags" in text


def test_metrics_stay_off_unless_asked() -> None:
    config = shipped("dev-aws")
    deployed = deploy("dev-aws", config)
    assert not [a for a in deployed.aws["associations"] if a["associationName"].endswith("-metrics-agent")]
    assert not [a for a in deployed.aws["alarms"] if "disk" in a or "memory" in a]
    assert "cloudwatch:PutMetricData" not in json.dumps(deployed.aws["roles"])


def test_the_estimate_prices_the_node_metrics(with_metrics: Deployed) -> None:
    from swarmstack.cost import estimate
    from swarmstack.prices import load_prices

    region = with_metrics.config["aws:region"]
    result = estimate(with_metrics.graph, region, load_prices("aws"))
    (item,) = [i for i in result.items if "custom metrics" in i.description]
    groups = 1 + len(with_metrics.graph.outputs["workerGroups"])
    nodes = sum(int(g.inputs.get("desiredCapacity") or 0) for g in with_metrics.graph.of_type(
        "aws:autoscaling/group:Group"))
    assert item.quantity == 3 * nodes + 4 * groups
