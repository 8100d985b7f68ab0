"""Node metrics on Azure: performance counters in the logging's collection rule and the
disk and memory alerts over them, from the real program in the Azure model; and the
model's own checks of counters and alert dimensions."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from shipped import azure_model_of

from components.azure.metrics import PERF_COUNTERS, disk_query, memory_query
from swarmstack.config.load import read_stack_file
from swarmstack.engine.azure import AzureBackend
from swarmstack.engine.graph import Graph
from swarmstack.engine.local import RandomBackend, TlsBackend
from swarmstack.engine.mocks import EngineError
from swarmstack.engine.run import run_stack

DCR = "azure-native:monitor:DataCollectionRule"
ALERT = "azure-native:monitor:ScheduledQueryRule"


def program(metrics: dict[str, Any] | None) -> Graph:
    config = copy.deepcopy(read_stack_file("prod-azure")[1])
    if metrics is not None:
        config["swarmstack:cluster"]["metrics"] = metrics
    return azure_model_of("prod-azure", config)[0]  # built once per test run (tests/unit/shipped.py)


@pytest.fixture(scope="module")
def with_metrics() -> Graph:
    return program({"enabled": True, "diskAlarmPercent": 85, "memoryAlarmPercent": 95})


def test_the_collection_rule_samples_memory_swap_and_disk_every_minute(with_metrics: Graph) -> None:
    (rule,) = with_metrics.of_type(DCR)
    (source,) = rule.inputs["dataSources"]["performanceCounters"]
    assert source["counterSpecifiers"] == list(PERF_COUNTERS)
    assert (source["samplingFrequencyInSeconds"], source["streams"]) == (60, ["Microsoft-Perf"])
    assert {"streams": ["Microsoft-Perf"], "destinations": ["workspace"]} in rule.inputs["dataFlows"]
    assert rule.inputs["dataSources"]["syslog"]  # the logs still flow


def test_disk_and_memory_alert_per_node_to_the_action_group(with_metrics: Graph) -> None:
    alerts = {a.inputs["ruleName"].rsplit("-", 1)[-1]: a.inputs for a in with_metrics.of_type(ALERT)}
    disk, memory = alerts["disk"], alerts["memory"]
    (quorum,) = [a.inputs for a in with_metrics.of_type(ALERT) if "quorum" in a.inputs["ruleName"]]
    for alert, threshold, window, split in ((disk, 85, "PT5M", ["Computer", "InstanceName"]),
                                            (memory, 95, "PT15M", ["Computer"])):
        (condition,) = alert["criteria"]["allOf"]
        assert (condition["threshold"], condition["operator"], alert["windowSize"]) == (threshold, "GreaterThan", window)
        assert [d["name"] for d in condition["dimensions"]] == split
        assert alert["scopes"] == quorum["scopes"]  # the logging's workspace
        assert alert.get("actions") == quorum.get("actions")  # who hears the quorum alert hears these
    assert disk["criteria"]["allOf"][0]["query"] == disk_query()
    assert '"/", "/var/lib/docker"' in disk_query()
    assert "min(CounterValue)" in memory_query()  # high all along the window, not a spike


def test_metrics_stay_off_unless_asked() -> None:
    graph = program(None)
    (rule,) = graph.of_type(DCR)
    assert not rule.inputs["dataSources"].get("performanceCounters")
    assert [a.inputs["ruleName"] for a in graph.of_type(ALERT)] == [
        a for a in [a.inputs["ruleName"] for a in graph.of_type(ALERT)] if "quorum" in a]


PRELUDE = """
import pulumi
import pulumi_azure_native as azure
rg = azure.resources.ResourceGroup("rg", resource_group_name="rg", location="westeurope")
ws = azure.operationalinsights.Workspace("ws", resource_group_name=rg.name, workspace_name="work-space",
                                         sku={"name": "PerGB2018"}, retention_in_days=30)
"""


def run_program(tmp_path: Path, body: str) -> Graph:
    (tmp_path / "__main__.py").write_text(PRELUDE + textwrap.dedent(body))
    backends = {"azure-native": AzureBackend("westeurope"), "tls": TlsBackend(), "random": RandomBackend()}
    return run_stack("test", {"azure-native:location": "westeurope"}, tmp_path, backends=backends)  # type: ignore[arg-type]


def dcr(counter: str, frequency: int) -> str:
    return f"""
        azure.monitor.DataCollectionRule("dcr", resource_group_name=rg.name, data_collection_rule_name="dcr",
            kind="Linux", data_sources={{"performance_counters": [{{"name": "p", "streams": ["Microsoft-Perf"],
                "sampling_frequency_in_seconds": {frequency}, "counter_specifiers": [{counter!r}]}}]}},
            destinations={{"log_analytics": [{{"name": "w", "workspace_resource_id": ws.id}}]}},
            data_flows=[{{"streams": ["Microsoft-Perf"], "destinations": ["w"]}}])
    """


def alert(query: str, dimension: str) -> str:
    return f"""
        azure.monitor.ScheduledQueryRule("a", resource_group_name=rg.name, rule_name="a", severity=2, enabled=True,
            scopes=[ws.id], evaluation_frequency="PT5M", window_size="PT5M",
            criteria={{"all_of": [{{"query": {query!r}, "time_aggregation": "Maximum",
                "metric_measure_column": "UsedPercent", "operator": "GreaterThan", "threshold": 80,
                "dimensions": [{{"name": {dimension!r}, "operator": "Include", "values": ["*"]}}]}}]}})
    """


def test_the_model_accepts_the_counters_and_alerts_it_should(tmp_path: Path) -> None:
    run_program(tmp_path, dcr("Logical Disk(*)\\% Used Space", 60) + alert(disk_query(), "InstanceName"))


@pytest.mark.parametrize(("body", "message"), [
    (dcr("Logical Disk % Used Space", 60), "must be Object(instance)\\Counter"),
    (dcr("Memory(*)\\% Used Memory", 3600), "samplingFrequencyInSeconds 3600 is not 1 to 1800"),
    (alert(memory_query(), "InstanceName"), "dimension 'InstanceName' is not a column the query summarizes by"),
])
def test_the_model_refuses_what_azure_would(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(EngineError, match=re.escape(message)):
        run_program(tmp_path, body)
