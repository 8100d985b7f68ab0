"""The Azure bootstrap with real Docker engines: one swarm from racing managers, safe
re-runs, drain and replacement on Scheduled Events, per-identity access to the store.

Table storage is Azurite's (Microsoft's emulator, HTTPS, OAuth tokens checked) behind
the storage gate of `azure_fake.py`, which enforces the stack's role assignments as it
does for its own IMDS, Key Vault and ARM; the scripts are the rendered `prod-azure` ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from conftest import require_azure_harness

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def harness() -> Iterator:  # type: ignore[type-arg]
    require_azure_harness()
    from argv_watch import ArgvWatch
    from azure_harness import AzureHarness

    h = AzureHarness(timer_period=2.0, overrides={"drain_wait_seconds": 30})
    try:
        h.argv = ArgvWatch()  # every command line on the machine, from the first boot on
    except BaseException:
        h.close()
        raise
    try:
        h.provision()
        yield h
    finally:
        h.argv.close()
        h.close()


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)


def test_racing_managers_form_exactly_one_swarm_and_workers_join(harness) -> None:  # type: ignore[no-untyped-def]
    managers = [harness.add_azure_node("managers") for _ in range(3)]
    workers = [harness.add_azure_node("general") for _ in range(2)]
    results = harness.boot_all(managers + workers)
    failed = {name: r.stderr[-2000:] for name, r in results.items() if r.returncode != 0}
    assert not failed, failed
    harness.wait_converged(managers=3, workers=2)
    state = harness.azure.state()
    markers = [row for row in state["tables"]["swarm"] if row["RowKey"] == "init"]
    assert len(markers) == 1
    inits = [n for n in managers if "initialised the swarm" in n.log.read_text()]
    assert [n.vm_id for n in inits] == [markers[0]["owner"]]
    assert state["secrets"]["swarm-worker-token"].startswith("SWMTKN-1-")
    assert state["secrets"]["swarm-manager-token"].startswith("SWMTKN-1-")
    listed = next(r for r in state["tables"]["swarm"] if r["RowKey"] == "managers")["addresses"].split(",")
    logs = "\n".join(f"== {n.name} {n.ip}\n{n.log.read_text()}" for n in managers)
    calls = [c for c in state["calls"] if "RowKey='managers'" in c[2]]
    assert sorted(listed) == sorted(n.ip for n in managers), f"{logs}\n{calls}"


def test_the_leader_labels_each_node_from_arms_view_of_its_machine(harness) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, trusted labels: the pool comes from the scale set's tag and the node's
    address must be on the machine's interface, never from the node's engine labels."""
    leader = harness.leader()
    result = leader.run("cleanup")
    assert result.returncode == 0, result.stderr[-2000:]
    for node in harness.live():
        labels = json.loads(leader.docker("node", "inspect", node.name, "--format", "{{json .Spec.Labels}}"))
        want = {"swarmstack.pool": node.pool, "swarmstack.role": node.role, "swarmstack.zone": node.zone,
                "swarmstack.instance-id": node.vm_id, "swarmstack.instance-type": "Standard_D2s_v5"}
        if node.pool == "general":
            want["tier"] = "app"
        assert labels == want, f"{node.name}: {labels}\n{result.stderr[-2000:]}"


def test_every_call_stayed_within_the_identitys_grants(harness) -> None:  # type: ignore[no-untyped-def]
    from azurite import ACCOUNT

    calls = harness.azure.state()["calls"]
    assert [c for c in calls if c[3] == 403] == []
    worker_paths = {path for role, _, path, _ in calls if role == "worker"}
    assert "/kv/secrets/swarm-manager-token" not in worker_paths
    assert not any(role == "worker" and method != "GET" and path.startswith(f"/{ACCOUNT}/swarm")
                   for role, method, path, _ in calls)
    # The gate saw the storage calls (every node reads the swarm table; workers sign up in leaving).
    assert any(role == "worker" and path.startswith(f"/{ACCOUNT}/swarm(") for role, _, path, _ in calls), calls[-20:]
    assert any(role == "manager" and method == "POST" and path == f"/{ACCOUNT}/swarm"
               for role, method, path, _ in calls), calls[-20:]


def test_the_storage_gate_refuses_what_a_role_is_not_granted(harness) -> None:  # type: ignore[no-untyped-def]
    """The gate in front of Azurite is Azure's RBAC here: a worker's token may read the
    swarm table but not write it (403, as Azure answers), and a request it lets through
    is still judged by Azurite (a token for Key Vault's audience is refused)."""
    import json as json_module
    import ssl
    import urllib.error
    import urllib.request

    from azure_harness import CLIENT_IDS, TABLE_ENDPOINT
    from azurite import aad_token

    def call(token: str, method: str, url: str, body: bytes | None = None) -> int:
        def run() -> int:
            request = urllib.request.Request(url, data=body, method=method, headers={
                "Authorization": f"Bearer {token}", "x-ms-version": "2020-12-06", "DataServiceVersion": "3.0",
                "Accept": "application/json;odata=minimalmetadata", "Content-Type": "application/json"})
            context = ssl.create_default_context(cafile=str(harness.azure.ca_file))
            try:
                with urllib.request.urlopen(request, timeout=10, context=context) as answer:
                    return int(answer.status)
            except urllib.error.HTTPError as err:
                return int(err.code)

        return harness.azure.pool.submit(run).result()  # type: ignore[no-any-return]

    worker, _ = aad_token(CLIENT_IDS["worker"], "https://storage.azure.com/")
    row = json_module.dumps({"PartitionKey": "swarm", "RowKey": "intruder", "owner": "w"}).encode()
    assert call(worker, "GET", f"{TABLE_ENDPOINT}swarm(PartitionKey='swarm',RowKey='init')") == 200
    assert call(worker, "POST", f"{TABLE_ENDPOINT}swarm", row) == 403
    vault_audience, _ = aad_token(CLIENT_IDS["manager"], "https://vault.azure.net")
    assert call(vault_audience, "GET", f"{TABLE_ENDPOINT}swarm(PartitionKey='swarm',RowKey='init')") == 403
    expired, _ = aad_token(CLIENT_IDS["manager"], "https://storage.azure.com/", lifetime=-60)
    assert call(expired, "GET", f"{TABLE_ENDPOINT}swarm(PartitionKey='swarm',RowKey='init')") in (401, 403)
    assert not [r for r in harness.azure.state()["tables"]["swarm"] if r["RowKey"] == "intruder"]


def test_bootstrap_again_changes_nothing(harness) -> None:  # type: ignore[no-untyped-def]
    before = harness.view()
    for node in harness.live():
        result = node.run("bootstrap")
        assert result.returncode == 0, result.stderr[-1000:]
        assert "already in the swarm; nothing to change" in node.log.read_text().splitlines()[-2:][0] + \
            node.log.read_text()
    after = harness.wait_converged(managers=3, workers=2)
    assert sorted(r["id"] for r in after) == sorted(r["id"] for r in before)
    assert len([r for r in harness.azure.state()["tables"]["swarm"] if r["RowKey"] == "init"]) == 1


def test_the_prune_command_runs_on_a_node(harness) -> None:  # type: ignore[no-untyped-def]
    node = harness.live("worker")[0]
    result = node.run("prune")
    assert result.returncode == 0, result.stderr[-1000:]
    log = node.log.read_text()
    assert "ran: docker image prune --all --force --filter until=24h" in log
    assert "docker system prune" not in log  # a manager must never prune (external) overlay networks
    node.docker("load", "-i", str(harness.image), timeout=60)  # the prune took the unused test image


def test_a_terminating_manager_leaves_cleanly_and_a_replacement_joins(harness) -> None:  # type: ignore[no-untyped-def]
    harness.start_timers()
    leader = harness.leader()
    victim = next(n for n in harness.live("manager") if n is not leader)
    event = victim.schedule("Terminate")
    try:
        wait_for(lambda: event in harness.azure.state()["approved"], 120, "the manager to approve its deletion")
    except AssertionError as err:
        watch = (victim.dir / "watch.out").read_text() if (victim.dir / "watch.out").exists() else ""
        raise AssertionError(f"{err}\n{victim.log.read_text()}\n{watch[-3000:]}") from None
    log = victim.log.read_text()
    assert "drained myself" in log and "demoted myself to worker" in log and "left the swarm" in log
    victim.stop()
    harness.gone(victim)
    wait_for(lambda: harness.converged(harness.view(), managers=2, workers=2) is None, 120,
             "the leader to remove the deleted manager")
    replacement = harness.add_azure_node("managers")
    try:
        result = replacement.boot()
    except RuntimeError as err:
        raise AssertionError(f"{err}\n{(replacement.dir / 'dockerd.log').read_text()[-3000:]}") from None
    assert result.returncode == 0, result.stderr[-2000:]
    harness.wait_converged(managers=3, workers=2)
    assert "initialised the swarm" not in replacement.log.read_text()
    assert len([r for r in harness.azure.state()["tables"]["swarm"] if r["RowKey"] == "init"]) == 1


def test_a_terminating_worker_is_drained_by_the_leader_before_it_leaves(harness) -> None:  # type: ignore[no-untyped-def]
    harness.start_timers()
    leader = harness.leader()
    leader.docker("service", "create", "--detach", "--name", "sleepers", "--replicas", "4",
                  "--constraint", "node.role==worker", "swarmstack/sleep:test", timeout=60)
    victim = harness.live("worker")[0]
    wait_for(lambda: victim.docker("ps", "-q", "--filter", "label=com.docker.swarm.task.id").strip(), 60,
             "tasks on the worker about to be deleted")
    event = victim.schedule("Terminate")
    wait_for(lambda: event in harness.azure.state()["approved"], 120, "the worker to approve its deletion")
    log = victim.log.read_text()
    assert "asked the managers to drain this worker" in log
    assert "no swarm tasks left on this node" in log, log
    leader_logs = "".join(n.log.read_text() for n in harness.live("manager"))
    assert f"instance {victim.vm_id} is leaving" in leader_logs
    victim.stop()
    harness.gone(victim)
    wait_for(lambda: harness.converged(harness.view(), managers=3, workers=1) is None, 120,
             "the leader to remove the deleted worker")


def test_the_leader_deletes_day_old_leaving_rows_and_keeps_recent_ones(harness) -> None:  # type: ignore[no-untyped-def]
    """Rows in `leaving` were never deleted: a table that only grows pages past 1,000 rows,
    which the leader's one read does not follow, and a new leaver would go undrained. The
    leader deletes the rows a day old (or without a time) as it reads them."""
    harness.start_timers()
    now = int(time.time())
    for row, at in (("stale-node", str(now - 2 * 86400)), ("timeless-node", "soon"), ("recent-node", str(now))):
        harness.azure.storage.insert("leaving", {"PartitionKey": "nodes", "RowKey": row,
                                                 "vm": f"00000000-0000-0000-0000-{row[:4].encode().hex()}0000", "at": at})
    wait_for(lambda: {r["RowKey"] for r in harness.azure.state()["tables"]["leaving"]}.isdisjoint(
        {"stale-node", "timeless-node"}), 120, "the leader to delete the day-old rows")
    assert "recent-node" in {r["RowKey"] for r in harness.azure.state()["tables"]["leaving"]}
    leader_logs = "".join(n.log.read_text() for n in harness.live("manager"))
    assert "deleted the day-old leaving row of node stale-node" in leader_logs


def test_a_spot_worker_leaves_within_its_eviction_notice(harness) -> None:  # type: ignore[no-untyped-def]
    harness.start_timers()
    spot = harness.add_azure_node("batch")
    result = spot.boot()
    assert result.returncode == 0, result.stderr[-2000:]
    wait_for(lambda: harness.converged(harness.view(), managers=3, workers=2) is None, 60, "the Spot worker to join")
    started = time.monotonic()
    event = spot.schedule("Preempt")
    wait_for(lambda: event in harness.azure.state()["approved"], 60, "the Spot worker to approve its eviction")
    assert time.monotonic() - started < 30  # Azure evicts 30 s after the notice
    assert "(Preempt)" in spot.log.read_text() and "left the swarm" in spot.log.read_text()


def test_no_join_token_or_bearer_token_was_ever_on_a_command_line(harness) -> None:  # type: ignore[no-untyped-def]
    """Issue 10: join tokens go through private files and request bodies, bearer tokens
    through `curl -H @file`, never through argv. Every command line of every process on
    the machine was recorded from the first boot to here (init, token publishing, the
    joins of the cold start, the replacement and the Spot worker; `argv_watch.py`)."""
    from argv_watch import redact
    from azure_harness import CLIENT_IDS
    from azurite import claims_of

    watch = harness.argv
    state = harness.azure.state()
    tokens = [state["secrets"][f"swarm-{role}-token"] for role in ("manager", "worker")]
    assert all(t.startswith("SWMTKN-1-") for t in tokens)
    issued = state["issued"]
    assert {claims_of(t)["appid"] for t in issued} == set(CLIENT_IDS.values()), "both identities got tokens"
    secrets = tokens + issued
    # The watch saw the commands that carry them, so finding nothing means something.
    for needles in (("curl", "-X PUT", "-H @", "/kv/secrets/swarm-manager-token"),
                    ("curl", "-X GET", "-H @", "/kv/secrets/swarm-worker-token"),
                    ("curl", "identity/oauth2/token", "client_id="),
                    ("curl", "POST", "http://localhost/swarm/join")):
        assert watch.seen(*needles), f"the watch never saw a command line with {needles}: {watch.summary()}"
    print(f"\n[argv] {watch.summary()}", flush=True)
    leaks = watch.leaks(secrets)
    if leaks:  # the message, not pytest's introspection, so that it shows no whole secret
        pytest.fail(redact(f"secrets on command lines ({watch.summary()}): {leaks}", secrets), pytrace=False)


@pytest.fixture()
def fresh() -> Iterator:  # type: ignore[type-arg]
    require_azure_harness()
    from azure_harness import AzureHarness

    h = AzureHarness(timer_period=2.0, overrides={"stale_marker_seconds": 5})
    try:
        h.provision()
        yield h
    finally:
        h.close()


def test_a_stale_marker_of_a_gone_machine_is_taken_over_by_exactly_one_manager(fresh) -> None:  # type: ignore[no-untyped-def]
    # A manager won the election, then its machine vanished before it stored the tokens.
    fresh.azure.storage.insert("swarm", {
        "PartitionKey": "swarm", "RowKey": "init", "owner": "00000000-dead-0000-0000-000000000000",
        "address": "10.199.0.250", "at": str(int(time.time()) - 3600)})
    managers = [fresh.add_azure_node("managers") for _ in range(3)]
    results = fresh.boot_all(managers)
    failed = {name: r.stderr[-2000:] for name, r in results.items() if r.returncode != 0}
    assert not failed, failed
    fresh.wait_converged(managers=3, workers=0)
    logs = {n.name: n.log.read_text() for n in managers}
    takers = [name for name, log in logs.items() if "took over the stale init marker" in log]
    inits = [name for name, log in logs.items() if "initialised the swarm" in log]
    assert len(takers) == 1 and inits == takers, logs
    rows = {r["RowKey"]: r for r in fresh.azure.state()["tables"]["swarm"]}
    assert rows["init"]["owner"] == next(n.vm_id for n in managers if n.name == takers[0])
