"""The election's stale-marker rule on real engines.

An init marker written by an instance that never stored the tokens: while that
instance runs, however old the marker, no manager inits; once it is terminated,
the waiting managers race for the takeover and exactly one inits.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import pytest
from conftest import require_harness

pytestmark = pytest.mark.integration

PREFIX = "/swarmstack/prod/0a1b2c3d"  # the harness's generation (harness.Harness.generation)


@pytest.fixture()
def harness() -> Iterator[object]:
    require_harness()
    from certs import make_bundle
    from harness import SUBNET, Harness

    h = Harness(timer_period=2.0)
    try:
        bundle = make_bundle([f"{SUBNET}.{i}" for i in range(10, 60)])
        h.provision(2, {}, tls=bundle.ssm_values())
        yield h
    finally:
        h.close()


def test_stale_marker_waits_for_a_live_winner_then_exactly_one_takes_over(harness) -> None:  # type: ignore[no-untyped-def]
    h = harness
    image = h.cloud.aws("ec2", "describe_images", Owners=["amazon"])["Images"][0]["ImageId"]
    winner = h.cloud.aws("ec2", "run_instances", ImageId=image, MinCount=1, MaxCount=1,
                         InstanceType="m6i.large")["Instances"][0]["InstanceId"]
    an_hour_ago = int(time.time()) - 3600
    h.cloud.aws("ssm", "put_parameter", Name=f"{PREFIX}/init", Type="String", Value=f"{winner} {an_hour_ago}")

    managers = h.add_nodes("managers")
    assert len(managers) == 2
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        boots = {n.name: pool.submit(n.boot) for n in managers}
        # The marker is an hour old but its instance runs: nobody may init.
        deadline = time.monotonic() + 120
        while not all("waiting" in n.log.read_text() for n in managers if n.log.exists()) or \
                not all(n.log.exists() for n in managers):
            assert time.monotonic() < deadline, "the managers never started waiting"
            time.sleep(1)
        time.sleep(8)
        for node in managers:
            state = node.docker("info", "--format", "{{.Swarm.LocalNodeState}}", check=False).strip()
            assert state == "inactive", f"{node.name} is {state!r} while the marker's instance runs"
            assert "took over" not in node.log.read_text()
        assert h.cloud.parameter(f"{PREFIX}/init") == f"{winner} {an_hour_ago}"

        h.cloud.aws("ec2", "terminate_instances", InstanceIds=[winner])
        results = {name: future.result(timeout=400) for name, future in boots.items()}
    assert all(r.returncode == 0 for r in results.values()), {k: r.stderr[-1500:] for k, r in results.items()}
    took_over = [n for n in managers if "took over the stale init marker" in n.log.read_text()]
    initialised = [n for n in managers if "initialised the swarm" in n.log.read_text()]
    assert len(took_over) == 1 and initialised == took_over
    taker = took_over[0]
    assert h.cloud.parameter(f"{PREFIX}/init").split()[0] == taker.instance_id
    assert h.cloud.parameter(f"{PREFIX}/takeover/{winner}").split()[0] == taker.instance_id
    h.start_timers()
    h.wait_converged(managers=2, workers=0)
