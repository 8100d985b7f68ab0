"""Issue 16: a thousand nodes within the stores' rate limits. The rendered node script, run
for real against the stand-ins of tests/unit/nodefakes (see test_node_script.py): a waiting
worker reads once per poll, its period scaled to the cluster's size (`worker_poll_for`: a
minute, 54-66 s apart, for a thousand workers, so that reads spread over the first minute
stay spread; 1 s for up to 16 workers, 2 s up to 32, in tenths), its first read anywhere in the first period;
throttling is retried as throttling (longer backoff, more tries, never an answer, the CLI's
own retries off); the leader looks up all down nodes in one call. The rates these give for
N nodes are measured by benchmarks/scale.py and stated in docs/scale.md.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import test_azure_userdata
from test_node_script import ME, STORE, Node, formed_swarm, make_node

from userdata import render
from userdata.params import worker_poll_for
from userdata.render import NODE_SCRIPT, files_of


@pytest.fixture
def manager(tmp_path: Path) -> Node:
    return make_node(tmp_path, "manager")


@pytest.fixture
def worker(tmp_path: Path) -> Node:
    """A worker of a cluster of about a thousand workers (a minute between reads)."""
    return make_node(tmp_path, "worker", worker_poll_seconds=worker_poll_for(1000))


def store_reads(node: Node) -> list[str]:
    return [line for line in node.calls.splitlines() if " ssm get-parameter" in line]


def test_the_poll_period_keeps_every_waiting_worker_together_under_the_store_limit() -> None:
    """SSM answers 40 reads a second per account and region; waiting workers take at most
    about 17 of them whatever their number, and a small cluster's workers wait seconds."""
    periods = {n: worker_poll_for(n) for n in range(0, 1001)}
    assert all(n / period <= 17 for n, period in periods.items())
    assert periods[0] == 1 and periods[5] == 1 and periods[16] == 1 and periods[17] == 2
    assert periods[32] == 2 and periods[33] == 3 and periods[1000] == 60
    assert all(periods[n] <= periods[n + 1] for n in range(1000))


def test_a_small_clusters_worker_polls_every_second(tmp_path: Path) -> None:
    """prod-aws has 5 workers: a worker's first read comes at once and it reads again every
    0.9 to 1.1 s (tenths, jittered), not every 2 or 5 s: on a cold start the workers join
    about a second after the tokens are stored, and a replacement reads at once."""
    small = make_node(tmp_path, "worker")
    assert small.run("bootstrap", "10").returncode != 0
    sleeps = small.sleeps
    assert sleeps[0] == 0, sleeps  # the first read: within the first period (whole seconds)
    assert all(0.9 <= s <= 1.1 for s in sleeps[1:10]), sleeps  # the first ten polls of a run
    assert 9 <= len(sleeps[1:]) <= 11, sleeps  # 10 s of 1 s polls, counted by the virtual clock
    assert len(set(sleeps[1:])) > 1, sleeps  # jittered
    assert len(store_reads(small)) == len(sleeps)  # one read per poll


def test_a_long_wait_backs_off_a_second_every_ten_reads(tmp_path: Path) -> None:
    """Each poll costs CPU (an aws CLI start was half a second of it, aws_api a tenth; a
    python3 start and a signed request): every second, for as long as no manager comes, adds
    up on a t3.micro. The period grows by a second every ten reads of a run: a whole run
    (JOIN_WAIT, 300 s) reads about 70 times, not 300, and the next run (systemd's) starts
    fast again."""
    small = make_node(tmp_path, "worker")
    assert small.run("bootstrap", "300").returncode != 0
    sleeps = small.sleeps[1:]
    for attempt, seconds in enumerate(sleeps, start=1):
        period = 1 + attempt // 10
        assert 0.9 * period - 0.05 <= seconds <= 1.1 * period + 0.05, (attempt, sleeps)
    assert 60 <= len(sleeps) <= 85 and sleeps[-1] >= 7 * 0.9, sleeps
    before = len(small.sleeps)
    assert small.run("bootstrap", "10").returncode != 0  # systemd's next run: fast again
    assert all(0.9 <= s <= 1.1 for s in small.sleeps[before + 1:before + 10]), small.sleeps[before:]


def test_a_waiting_worker_polls_every_55_to_65_seconds_after_a_first_read_spread_over_a_minute(worker: Node) -> None:
    """1000 workers polling every 1-10 s are 100+ reads a second; SSM answers 40."""
    result = worker.run("bootstrap", "180")  # no swarm yet: it waits, then gives up for systemd
    assert result.returncode != 0
    sleeps = worker.sleeps
    assert len(sleeps) >= 2, result.stderr
    assert 0 <= sleeps[0] < 60
    assert all(54 <= s <= 66 for s in sleeps[1:]), sleeps
    assert len(store_reads(worker)) == len(sleeps)  # one read per poll


def test_a_worker_whose_managers_do_not_answer_yet_reads_token_and_list_in_one_call(worker: Node) -> None:
    formed_swarm(worker)
    (worker.dir / "closed").write_text("10.0.1.20\n")
    result = worker.run("bootstrap", "180")
    assert result.returncode != 0
    reads = store_reads(worker)
    assert reads and all(" ssm get-parameters " in r and f"{STORE}/tokens/worker" in r
                         and f"{STORE}/managers" in r for r in reads), reads
    assert len(reads) == len(worker.sleeps)


def test_a_throttled_waiting_read_is_not_an_answer_and_is_not_retried_in_a_burst(worker: Node) -> None:
    """Throttled, a read is an error (never "no token yet"), sent once (aws_api: one HTTP
    request, no SDK's retries), then the worker waits its 55-65 s: retries in a burst
    would keep a throttled store throttled."""
    formed_swarm(worker)
    worker.write("faults.json", {"ssm get-parameters": "ThrottlingException"})
    result = worker.run("bootstrap", "180")
    assert result.returncode != 0
    assert "could not be read (error or throttling)" in result.stderr
    assert worker.read("engine.json").get("joined") is None
    assert len(store_reads(worker)) == len(worker.sleeps) >= 2
    assert all(54 <= s <= 66 for s in worker.sleeps[1:])
    assert all(read.startswith("--via api ssm get-parameters ") for read in store_reads(worker))
    # The store answers again: the same worker joins.
    worker.write("faults.json", {})
    (worker.dir / "sleeps.log").unlink()
    assert worker.run("bootstrap", "10").returncode == 0
    assert worker.read("engine.json")["joined"]["JoinToken"].endswith("-worker")


def test_a_throttled_election_backs_off_longer_and_still_wins(manager: Node) -> None:
    """TooManyUpdates (or ThrottlingException) on the marker's create is throttling: retried
    with a longer backoff and more tries, never taken for "the marker exists"."""
    manager.write("faults.json", {f"ssm put-parameter {STORE}/init": {"code": "TooManyUpdates", "times": 4}})
    result = manager.run("bootstrap", "30")
    assert result.returncode == 0, result.stderr
    assert manager.read("engine.json")["inits"] == 1
    # The first round's create is tried once: throttled, the round ends (an error, not
    # "exists") and the next round's create is retried with throttling's longer backoff.
    creates = [line for line in manager.calls.splitlines() if f"put-parameter --name {STORE}/init " in line]
    assert len(creates) == 5, manager.calls
    assert len([s for s in manager.sleeps if s >= 4]) >= 3, manager.sleeps


def test_the_leader_looks_up_every_down_node_in_one_call(manager: Node) -> None:
    """Clean-up must cost calls by what changed, not one per node: three down nodes, one
    EC2 call; the two whose machines are gone are removed, the stopped one stays."""
    formed_swarm(manager)
    manager.update("engine.json", state="active", manager=True, leader=True,
                   node_table=["up ready active worker i-up 10.0.2.4 - - i-up",
                               "a down active worker i-a 10.0.2.5 - - i-a",
                               "b down active worker i-b 10.0.2.6 - - i-b",
                               "c down active worker i-c 10.0.2.7 - - i-c"])
    manager.update("cloud.json", instances={ME: "running", "i-up": "running", "i-a": "terminated",
                                            "i-c": "stopped"})
    result = manager.run("cleanup")
    assert result.returncode == 0, result.stderr
    lookups = [line for line in manager.calls.splitlines() if " ec2 describe-instances" in line]
    assert len(lookups) == 1 and "i-a,i-b,i-c" in lookups[0], lookups
    assert "docker node rm --force a" in manager.calls and "docker node rm --force b" in manager.calls
    assert "docker node rm --force c" not in manager.calls


def test_no_node_down_costs_no_lookup(manager: Node) -> None:
    formed_swarm(manager)
    manager.update("engine.json", state="active", manager=True, leader=True,
                   node_table=[f"n{i} ready active worker i-{i} 10.0.2.{i} - - i-{i}" for i in range(50)])
    assert manager.run("cleanup").returncode == 0
    assert "ec2 describe-instances" not in manager.calls



def test_azure_waits_what_retry_after_asks_when_throttled(tmp_path: Path) -> None:
    """Key Vault, Table storage and ARM answer 429 (503) with Retry-After: the node waits that
    long (at most 60 s), then the call succeeds; it is never an answer."""
    script = files_of(render(test_azure_userdata.worker()))[NODE_SCRIPT].replace('\nmain "$@"', "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # curl: 429 with Retry-After: 7 on the first call, 200 after (headers to -D FILE, body to -o FILE).
    (bin_dir / "curl").write_text(
        '#!/bin/bash\nn=$(cat "$FAKE_DIR/n" 2>/dev/null || echo 0); echo $((n + 1)) >"$FAKE_DIR/n"\n'
        'while (($#)); do case $1 in -D) hdr=$2; shift ;; -o) out=$2; shift ;; esac; shift; done\n'
        'if ((n == 0)); then printf "HTTP/1.1 429 Too Many Requests\\r\\nRetry-After: 7\\r\\n\\r\\n" >"$hdr"; '
        'echo "{}" >"$out"; printf 429; else printf "HTTP/1.1 200 OK\\r\\n\\r\\n" >"$hdr"; '
        'echo \'{"value": "SWMTKN-1-x"}\' >"$out"; printf 200; fi\n')
    (bin_dir / "sleep").write_text('#!/bin/sh\necho "$1" >>"$FAKE_DIR/sleeps.log"\n')
    for tool in ("curl", "sleep"):
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "node.sh").write_text(script)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    driver = ('source "$FAKE_DIR/node.sh"; auth_header() { : >"$RUN_DIR/h"; echo "$RUN_DIR/h"; }; '
              'set +e; http 404 https://vault.azure.net GET https://v.vault.azure.net/secrets/x; echo "rc=$?"')
    result = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, timeout=30,
                            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_DIR": str(tmp_path),
                                 "SWARMSTACK_RUN_DIR": str(run_dir),
                                 "SWARMSTACK_LOG_FILE": str(tmp_path / "log"),
                                 "SWARMSTACK_STATE_DIR": str(tmp_path / "state")})
    assert "rc=0" in result.stdout and "SWMTKN-1-x" in result.stdout, result.stderr
    assert (tmp_path / "sleeps.log").read_text().split() == ["7"]
