"""Every config the model accepts builds a graph the cloud model accepts."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmstack.config.load import validate
from swarmstack.config.model import ClusterConfig
from swarmstack.config.problems import ConfigError
from swarmstack.config.rules import AWS_LOG_RETENTION
from swarmstack.deploy_order import problems as deploy_order_problems
from swarmstack.engine.aws import AwsBackend
from swarmstack.engine.run import backends_for, run_stack

ROOT = Path(__file__).resolve().parents[2]

pools = st.lists(
    st.fixed_dictionaries({
        "count": st.integers(0, 4),
        "spot": st.booleans(),
        "diskGiB": st.integers(20, 1024),
    }),
    max_size=3,
)


@st.composite
def aws_clusters(draw: st.DrawFn) -> dict[str, Any]:
    managers = draw(st.sampled_from([1, 3, 5, 7]))
    zones = draw(st.integers(3 if managers >= 3 else 1, 3))
    api = draw(st.booleans())
    ssh = draw(st.booleans())
    workers = []
    for index, pool in enumerate(draw(pools)):
        types = ["m6i.large", "m5.large"] if pool["spot"] else ["t3.medium"]
        workers.append({"name": f"pool{index}", "count": pool["count"], "spot": pool["spot"],
                        "instanceType": types, "diskGiB": pool["diskGiB"], "labels": {"n": str(index)}})
    ports = draw(st.lists(st.sampled_from([(80, "tcp"), (443, "tcp"), (8080, "tcp"), (5353, "udp")]),
                          unique=True, max_size=3))
    if not ports and not api:
        ports = [(80, "tcp")]
    prefix = draw(st.integers(16, 22))
    return {
        "cloud": "aws",
        "name": draw(st.sampled_from(["prop", "a-cluster-name-of-28-chars-x"])),
        "production": draw(st.booleans()) and managers > 1,
        "managers": {"count": managers, "instanceType": "t3.medium", "diskGiB": draw(st.integers(20, 200))},
        "workers": workers,
        "network": {"new": {"cidr": f"10.{draw(st.integers(0, 255))}.0.0/16" if prefix == 16 else f"10.40.0.0/{prefix}",
            "zones": zones, "nat": draw(st.sampled_from(["none", "single", "perZone"])),
            "flowLogs": draw(st.booleans())}},
        "access": {"adminCidrs": ["198.51.100.0/24"] if api or ssh else [],
                   **({"sshKeyName": "ops"} if ssh else {})},
        "dockerApi": {"enabled": api},
        "loadBalancer": {"public": draw(st.booleans()), "ports": [{"port": p, "protocol": q} for p, q in ports]},
        "logging": {"enabled": draw(st.booleans()), "retentionDays": draw(st.sampled_from(AWS_LOG_RETENTION)),
                    "kms": draw(st.booleans())},
        "prune": {"enabled": draw(st.booleans()), "schedule": draw(st.sampled_from([
                      "42 1 * * *", "0 */4 * * *", "15 2 * * 1-5", "5,35 * * * *", "0 3 * * sun", "30 1-23/2 * * *"])),
                  "volumes": draw(st.booleans())},
    }


@settings(max_examples=examples(3, 12), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aws_clusters())
def test_every_accepted_aws_config_builds_in_moto(cluster: dict[str, Any]) -> None:
    config = {"aws:region": "eu-west-1", "swarmstack:cluster": cluster}
    try:
        settings_ = validate("prop", "stacks/Pulumi.prop.yaml", config)
    except ConfigError as err:  # the strategy only draws valid configs: say which rule disagreed
        raise AssertionError(f"the strategy drew a config the model refuses:\n{err}") from None
    with ExitStack() as exits:
        backends = backends_for(config, exits)
        aws_backend = backends["aws"]
        assert isinstance(aws_backend, AwsBackend)
        # The key pair a user names must exist in their account, as AWS checks.
        aws_backend.ec2.create_key_pair(KeyName="ops")
        graph = run_stack("prop", config, ROOT, backends=backends)
    top = graph.of_type("swarmstack:aws:Cluster")
    assert len(top) == 1
    assert top[0].inputs["managerCount"] == settings_.cluster.managers.count
    assert top[0].inputs["production"] == settings_.cluster.production
    assert graph.outputs
    assert isinstance(settings_.cluster, ClusterConfig)
    # everything a node needs exists before its group and outlives it
    assert deploy_order_problems(graph) == []
