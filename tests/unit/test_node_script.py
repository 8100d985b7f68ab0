"""The node script's decisions, run for real (bash, the rendered AWS script) against
stand-ins for the AWS CLI, the docker CLI and curl (tests/unit/nodefakes/): what it does
when the store cannot be read, when a token was never stored, when it is the last
manager, when it cannot converge. The real-boot suite (tests/realboot/) shows the same on
booted nodes; these run in seconds and pin each decision to its cause (issue 9: split
brain, frozen cluster, destroy, unhealthy marking; issue 10: no secret on a command line).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from nodefakes import api as fake_api
from nodefakes import server as fakes

from swarmstack.config.load import load_stack
from userdata import params_for, render, restore_tool, restore_tool_key
from userdata.render import DAEMON_BASE, NODE_SCRIPT, files_of

# The script's backoff and polling sleeps run at this fraction of their length (a `sleep` in
# the fakes' bin dir): every sleep still happens, in the script's order, and is recorded in
# sleeps.log; only the waiting shrinks. The script's own clock (`$SECONDS`, which its
# deadlines read) moves on by each sleep's whole length (VIRTUAL_CLOCK): a 45 s wait polled
# every 3 s is 15 polls, in a tenth of a second, as on a node. `date` stays real: a deadline
# kept in a file's time (the converge deadline) is moved by the test (os.utime).
SLEEP_SCALE = 0.001
# Put before `main` in the test's copy of the script: its `sleep` records the length asked
# for in sleeps.log and sleeps SLEEP_SCALE of it (in the shell itself: as the fakes' `sleep`
# in bin/ does for a process other than the script's shell, without the two processes that
# one starts per sleep), then sets the shell's `$SECONDS` to the seconds slept so far (bash:
# "if SECONDS is assigned a value, [it reads] the number of seconds since the assignment
# plus the value assigned").
# The clock counts sleeps only: bash counts whole wall-clock seconds, so a real second
# crossed between sleeps would otherwise be added again at each sleep, and a 60 s wait would
# lose a poll now and then. The script sleeps whole seconds or tenths (a waiting worker's
# poll): the clock counts tenths and the script reads whole seconds, as bash's does.
# Sleeps in a subshell (a background job, a `$(...)`) move only that subshell's clock, as
# they would not on a node, where the caller waited that long too: no test here depends on
# a caller's deadline seeing them.
REAL_SLEEP = shutil.which("sleep") or "/bin/sleep"
VIRTUAL_CLOCK = ('_TENTHS=0; sleep() { local f=0 t s; [[ $1 != *.* ]] || f=${1#*.}; f=${f:0:1}; '
                 't=$((10 * 10#${1%%.*} + 10#${f:-0})); echo "$1" >>"$FAKE_DIR/sleeps.log"; '
                 f'printf -v s "%d.%04d" $((t / 10000)) $((t % 10000)); {REAL_SLEEP} "$s"; '  # SLEEP_SCALE of it
                 '_TENTHS=$((_TENTHS + t)); SECONDS=$((_TENTHS / 10)); }\n')
assert SLEEP_SCALE == 0.001  # VIRTUAL_CLOCK's "%d.%04d" of the tenths asked for
GENERATION = "0a1b2c3d"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
STORE = f"/swarmstack/prod/{GENERATION}"
ME = "i-0000000000000000a"
GROUP = "swarmstack-prod-managers"
MANAGER_TOKEN = "SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-manager"
WORKER_TOKEN = "SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-worker"


@dataclass
class Node:
    """One node's script, its fakes and their state, in a temporary directory."""

    dir: Path
    role: str

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.dir / 'bin'}:/usr/bin:/bin", "FAKE_DIR": str(self.dir), "LANG": "C.UTF-8",
               "FAKE_PORT": str(fakes.port()), "FAKE_TOKEN": fakes.TOKEN, "AWS_ENDPOINT_URL": fake_api.endpoint(self.dir),
               "SWARMSTACK_STATE_DIR": str(self.dir / "state"), "SWARMSTACK_RUN_DIR": str(self.dir / "run"),
               "SWARMSTACK_LOG_FILE": str(self.dir / "bootstrap.log"),
               "SWARMSTACK_DAEMON_BASE": str(self.dir / "daemon.base.json"),
               "SWARMSTACK_DAEMON_JSON": str(self.dir / "daemon.json"),
               "SWARMSTACK_DOCKER_DROPIN": str(self.dir / "dropin.conf"),
               "SWARMSTACK_TLS_DIR": str(self.dir / "tls"), "SWARMSTACK_DOCKER_SOCKET": str(self.dir / "docker.sock"),
               "SWARMSTACK_DOCKER_ROOT": str(self.dir / "docker")}
        return subprocess.run(["bash", str(self.dir / "swarmstack-node"), *command], env=env, capture_output=True,
                              text=True, timeout=timeout)

    def read(self, name: str) -> Any:
        return json.loads((self.dir / name).read_text())

    def write(self, name: str, value: Any) -> None:
        (self.dir / name).write_text(json.dumps(value))

    def update(self, name: str, **changes: Any) -> None:
        self.write(name, {**self.read(name), **changes})

    @property
    def calls(self) -> str:
        path = self.dir / "calls.log"
        return path.read_text() if path.exists() else ""

    @property
    def sleeps(self) -> list[float]:
        """The seconds of every `sleep` the script asked for, in order."""
        path = self.dir / "sleeps.log"
        return [float(line) for line in path.read_text().split()] if path.exists() else []

    @property
    def parameters(self) -> dict[str, dict[str, str]]:
        return dict(self.read("cloud.json")["parameters"])


def make_node(tmp: Path, role: str, real_api: bool = False, **overrides: Any) -> Node:
    """A node of prod-aws in `tmp`. Its SSM and CloudWatch Logs calls go through the
    script's own `aws_api` (python3, signed, over HTTP to nodefakes/api.py, every signature
    checked) when `real_api`; else `aws_api` is stood in by a client of the same fakes (its
    arguments and answers alike, without a Python start per call: nodefakes/api.main)."""
    settings = load_stack("prod-aws")
    pool = "managers" if role == "manager" else "general"
    params = replace(params_for(settings.cluster, settings.region, role, pool, GENERATION, KEY),
                     **{"docker_api": False, "log_groups": None, **overrides})
    files = files_of(render(params))
    # The one seam: managers' addresses are not probed over a network (no traffic leaves the
    # test); those listed in $FAKE_DIR/closed do not answer.
    stand_in = "" if real_api else 'aws_api() { command aws_api "$@"; }\n'
    script = files[NODE_SCRIPT].replace(
        '\nmain "$@"',
        '\nport_open() { ! grep -qxF "$1" "$FAKE_DIR/closed" 2>/dev/null; }\n' + stand_in + VIRTUAL_CLOCK
        + 'main "$@"')
    (tmp / "swarmstack-node").write_text(script)
    if role == "manager" and params.backup_store:  # what the stack writes to the bucket (stock_restore_tool)
        (tmp / "restore.sh").write_text(restore_tool(params))
    (tmp / "daemon.base.json").write_text(files[DAEMON_BASE])
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for fake in fakes.COMMANDS:  # each a client of the test process's answers (nodefakes/server.py)
        shutil.copy(fakes.CLIENT, bin_dir / fake)
        (bin_dir / fake).chmod(0o755)
    for tool in ("systemctl", "dockerd"):  # the engine's unit and binary: present, nothing to do (logged)
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >>"$FAKE_DIR/calls.log"\nexit 0\n')
        (bin_dir / tool).chmod(0o755)
    (bin_dir / "sleep").write_text(f'#!/bin/sh\necho "$1" >>"$FAKE_DIR/sleeps.log"\n'
                                   f'exec {REAL_SLEEP} "$(awk -v s="$1" \'BEGIN {{ printf "%.3f", s * {SLEEP_SCALE} }}\')"\n')
    (bin_dir / "sleep").chmod(0o755)
    node = Node(tmp, role)
    node.write("imds.json", {"meta-data/instance-id": ME, "meta-data/local-ipv4": "10.0.1.10",
                             "meta-data/placement/availability-zone": "eu-west-1a",
                             "meta-data/instance-type": "m6i.large",
                             "meta-data/autoscaling/target-lifecycle-state": "InService",
                             # the instance role's credentials, which aws_api signs with (nodefakes/api.py)
                             "meta-data/iam/security-credentials/": "node-role",
                             "meta-data/iam/security-credentials/node-role": json.dumps(
                                 {"AccessKeyId": "ASIANODEROLE", "SecretAccessKey": "node-secret",
                                  "Token": "node-session-token", "Expiration": "2099-01-01T00:00:00Z"})})
    node.write("cloud.json", {"parameters": {}, "instances": {ME: "running"},
                              "groups": {GROUP: {"desired": 3, "instances": [ME]}}, "pending": []})
    node.write("engine.json", {"state": "inactive", "tokens": {"manager": MANAGER_TOKEN, "worker": WORKER_TOKEN},
                               "valid_tokens": [MANAGER_TOKEN, WORKER_TOKEN]})
    return node


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Node]:
    yield make_node(tmp_path, "manager")


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Node]:
    yield make_node(tmp_path, "worker")


@pytest.fixture
def real_manager(tmp_path: Path) -> Iterator[Node]:
    """A manager whose store calls go through the script's own signed aws_api."""
    yield make_node(tmp_path, "manager", real_api=True)


def formed_swarm(node: Node, owner: str = "i-0000000000000000f", age: int = 3600) -> None:
    """The store of a swarm that formed long ago; its first manager is gone."""
    node.update("cloud.json", parameters={
        f"{STORE}/init": {"Value": f"{owner} {int(time.time()) - age}", "Type": "String"},
        f"{STORE}/tokens/manager": {"Value": MANAGER_TOKEN, "Type": "SecureString", "KeyId": KEY},
        f"{STORE}/tokens/worker": {"Value": WORKER_TOKEN, "Type": "SecureString", "KeyId": KEY},
        f"{STORE}/managers": {"Value": "10.0.1.20", "Type": "String"}})


# --- split brain: a read error is never an answer -------------------------------------


@pytest.mark.parametrize("fault", ["ThrottlingException", "InternalServerError", "AccessDeniedException"])
def test_a_replacement_manager_never_inits_when_the_tokens_cannot_be_read(real_manager: Node, fault: str) -> None:
    """Issue 9, item 3: the token read error was swallowed (`|| true`); a replacement
    manager found an old marker whose owner was gone, took over, ran `swarm init` and
    overwrote the real join tokens."""
    manager = real_manager
    formed_swarm(manager)
    marker = manager.parameters[f"{STORE}/init"]["Value"]
    manager.write("faults.json", {f"ssm get-parameter {STORE}/tokens/manager": fault,
                                  f"ssm get-parameters {STORE}/tokens/manager": fault})
    result = manager.run("bootstrap", "1")
    assert result.returncode != 0
    assert manager.read("engine.json").get("inits", 0) == 0, result.stderr
    # The one write: the first round's create of the marker, refused (it exists).
    assert "takeover" not in manager.calls and store_writes(manager) == [f"{STORE}/init"], manager.calls
    assert manager.parameters[f"{STORE}/init"]["Value"] == marker
    assert manager.parameters[f"{STORE}/tokens/manager"]["Value"] == MANAGER_TOKEN


def store_writes(node: Node) -> list[str]:
    """The parameter names of the node's `put-parameter` calls, in order."""
    return [line.split("--name ", 1)[1].split()[0] for line in node.calls.splitlines() if " ssm put-parameter " in line]


def test_a_manager_that_cannot_read_the_marker_inits_only_when_its_own_create_won(manager: Node) -> None:
    """A read error is never "no marker": the election is the marker's create alone (SSM's
    `--no-overwrite`), which the first round sends beside the read. Another manager's
    marker, unreadable: the create is refused and nothing inits, ever."""
    manager.update("cloud.json", parameters={
        f"{STORE}/init": {"Value": f"i-0000000000000000f {int(time.time())}", "Type": "String"}})
    manager.write("faults.json", {f"ssm {read} {STORE}/init": "AccessDeniedException"
                                  for read in ("get-parameter", "get-parameters")})
    result = manager.run("bootstrap", "2")
    assert result.returncode != 0
    assert manager.read("engine.json").get("inits", 0) == 0
    assert store_writes(manager) == [f"{STORE}/init"], manager.calls
    assert manager.parameters[f"{STORE}/init"]["Value"].startswith("i-0000000000000000f ")


def test_a_manager_whose_marker_read_fails_but_whose_create_won_inits_once(manager: Node) -> None:
    """The other side: no marker, the read denied, the create accepted: SSM itself says no
    other manager holds the marker, so this one inits (once) and stores the tokens."""
    manager.write("faults.json", {f"ssm {read} {STORE}/init": "AccessDeniedException"
                                  for read in ("get-parameter", "get-parameters")})
    result = manager.run("bootstrap", "2")
    assert result.returncode == 0, result.stderr
    assert manager.read("engine.json")["inits"] == 1
    assert manager.parameters[f"{STORE}/init"]["Value"].startswith(ME + " ")
    assert manager.parameters[f"{STORE}/tokens/manager"]["Value"] == MANAGER_TOKEN


def test_the_first_manager_inits_only_when_the_store_says_the_marker_is_absent(manager: Node) -> None:
    result = manager.run("bootstrap", "10")
    assert result.returncode == 0, result.stderr
    assert manager.read("engine.json")["inits"] == 1
    assert manager.parameters[f"{STORE}/init"]["Value"].startswith(ME + " ")


@pytest.mark.parametrize("owner", ['i-0dead", "Overwrite": true, "x": "', "i-0dead/../tokens/manager", ""])
def test_a_stale_marker_whose_owner_is_no_instance_id_is_never_taken_over(manager: Node, owner: str) -> None:
    """The owner becomes part of the takeover marker's name (and of its request's JSON): only
    an instance id does. Anything else is not taken for a stale marker; no store write follows."""
    manager.update("cloud.json", parameters={
        f"{STORE}/init": {"Value": f"{owner} {int(time.time()) - 7200}", "Type": "String"}})
    result = manager.run("bootstrap", "1")
    assert result.returncode != 0
    assert manager.read("engine.json").get("inits", 0) == 0, result.stderr
    assert not [name for name in manager.parameters if "/takeover/" in name], manager.parameters
    assert store_writes(manager) == [f"{STORE}/init"], manager.calls  # its own create, refused


def test_the_first_manager_forms_the_swarm_with_the_fewest_store_calls(real_manager: Node) -> None:
    """Issue 13: each store call is a CLI start on the bootstrap's critical path. The winner
    creates the marker (created: nobody held it, no read-back) side by side with its one read
    of tokens, addresses and marker, inits, then at once and side by side stores both tokens
    without reading them first (a swarm it just made has new tokens) and writes the manager
    list as itself alone (the addresses of a swarm it just made), all before its own launch
    action: two calls side by side, then three."""
    manager = real_manager
    result = manager.run("bootstrap", "10")
    assert result.returncode == 0, result.stderr
    lines = manager.calls.splitlines()
    calls = [line.split(" ssm ", 1)[1].split(" --")[0] for line in lines if " ssm " in line]
    assert sorted(calls[:2]) == ["get-parameters", "put-parameter"], manager.calls
    assert store_writes(manager)[0] == f"{STORE}/init", manager.calls
    assert calls[2:] == ["put-parameter"] * 3, manager.calls
    assert {f"{STORE}/tokens/manager", f"{STORE}/tokens/worker"} <= set(manager.parameters)
    assert manager.parameters[f"{STORE}/managers"]["Value"] == "10.0.1.10"
    stored = max(i for i, line in enumerate(lines) if "put-parameter" in line)
    hook = next(i for i, line in enumerate(lines) if "autoscaling " in line)
    assert stored < hook, manager.calls


def test_a_manager_waiting_for_the_tokens_reads_the_store_once_a_round(manager: Node) -> None:
    """Issue 13: a manager that lost the election waited with three CLI starts a round (the
    marker, the tokens, the marker again to see whether it was stale); on 2 cores five
    booting nodes' calls slowed each other. Now one read a round: a young marker needs no
    second look, and the election (the first round's create, refused) ran once."""
    manager.update("cloud.json", parameters={
        f"{STORE}/init": {"Value": f"i-0000000000000000f {int(time.time())}", "Type": "String"}})
    result = manager.run("bootstrap", "2")
    assert result.returncode != 0
    assert manager.read("engine.json").get("inits", 0) == 0
    calls = [line.split(" ssm ", 1)[1].split(" --")[0] for line in manager.calls.splitlines() if " ssm " in line]
    assert calls.count("get-parameters") >= 2 and calls.count("put-parameter") == 1, manager.calls
    assert store_writes(manager) == [f"{STORE}/init"], manager.calls
    # Between rounds 0.9 to 1.1 s (tenths, jittered): a handful of managers, a read each,
    # and a waiting manager joins about half a second after the tokens are stored.
    assert manager.sleeps and all(0.9 <= s <= 1.1 for s in manager.sleeps), manager.sleeps


def test_a_manager_whose_own_marker_has_tokens_beside_it_joins_and_never_inits_a_second_swarm(manager: Node) -> None:
    """Review of issue 13: the marker names this node (it won once, then lost its engine's
    swarm state) but the store holds tokens and managers: there is a swarm to join. An init
    here would make a second swarm and, with the tokens and list stored at once after init,
    send every later joiner to it."""
    formed_swarm(manager, owner=ME)
    result = manager.run("bootstrap", "10")
    assert result.returncode == 0, result.stderr
    assert manager.read("engine.json").get("inits", 0) == 0
    joined = manager.read("engine.json")["joined"]
    assert joined == {"AdvertiseAddr": "10.0.1.10", "RemoteAddrs": ["10.0.1.20:2377"], "JoinToken": MANAGER_TOKEN,
                      "ListenAddr": "10.0.1.10:2377"}  # the whole request body, as the engine gets it
    assert manager.parameters[f"{STORE}/tokens/manager"]["Value"] == MANAGER_TOKEN


def test_a_manager_whose_own_marker_has_a_malformed_token_beside_it_neither_inits_nor_joins(manager: Node) -> None:
    """Review: a stored value that is no join token (set by hand, a stray CR) was taken for
    "no token stored"; on the manager named by the marker that is an init, a second swarm.
    It is an unknown now: logged, never an answer."""
    formed_swarm(manager, owner=ME)
    manager.update("cloud.json", parameters={
        **manager.parameters, f"{STORE}/tokens/manager": {"Value": MANAGER_TOKEN + "\r", "Type": "SecureString",
                                                          "KeyId": KEY}})
    result = manager.run("bootstrap", "10")
    assert result.returncode != 0
    engine = manager.read("engine.json")
    assert engine.get("inits", 0) == 0 and "joined" not in engine, engine
    assert "the stored manager token is malformed" in result.stderr


def test_a_worker_of_a_cluster_named_tokens_reads_its_token_and_the_manager_list_apart(tmp_path: Path) -> None:
    """Review of issue 13: the read's rows were told apart by `*/tokens/*`, which in the
    cluster `tokens` (/swarmstack/tokens/...) matches the manager list too: the worker never
    saw a list and waited forever."""
    worker = make_node(tmp_path, "worker", cluster="tokens")
    store = f"/swarmstack/tokens/{GENERATION}"
    worker.update("cloud.json", parameters={
        f"{store}/tokens/worker": {"Value": WORKER_TOKEN, "Type": "SecureString", "KeyId": KEY},
        f"{store}/managers": {"Value": "10.0.1.20", "Type": "String"}})
    result = worker.run("bootstrap", "10")
    assert result.returncode == 0, result.stderr
    joined = worker.read("engine.json")["joined"]
    assert joined == {"AdvertiseAddr": "10.0.1.10", "RemoteAddrs": ["10.0.1.20:2377"], "JoinToken": WORKER_TOKEN,
                      "ListenAddr": "0.0.0.0:2377"}


# --- frozen cluster: the leader republishes ---------------------------------------------


def test_a_leader_whose_tokens_were_never_stored_publishes_them(manager: Node) -> None:
    """Issue 9, item 4: `swarm init` succeeded, storing the tokens failed; the next run saw
    "already in a swarm" and never stored them, so nobody could ever join."""
    manager.write("faults.json", {f"ssm put-parameter {STORE}/tokens/{role}": "ThrottlingException"
                                  for role in ("manager", "worker")})
    first = manager.run("bootstrap", "3")
    assert first.returncode != 0 and manager.read("engine.json")["inits"] == 1
    assert f"{STORE}/tokens/manager" not in manager.parameters
    manager.write("faults.json", {})
    again = manager.run("bootstrap", "3")
    assert again.returncode == 0, again.stderr
    assert manager.read("engine.json")["inits"] == 1
    stored = manager.parameters
    assert stored[f"{STORE}/tokens/manager"]["Value"] == MANAGER_TOKEN
    assert stored[f"{STORE}/tokens/worker"]["Value"] == WORKER_TOKEN


def test_a_rotated_token_is_republished_and_tokens_are_under_the_cluster_key(real_manager: Node) -> None:
    manager = real_manager
    formed_swarm(manager)
    manager.update("engine.json", state="active", manager=True, leader=True,
                   tokens={"manager": MANAGER_TOKEN, "worker": WORKER_TOKEN + "-rotated"})
    result = manager.run("bootstrap")
    assert result.returncode == 0, result.stderr
    worker_token = manager.parameters[f"{STORE}/tokens/worker"]
    assert worker_token["Value"] == WORKER_TOKEN + "-rotated"
    assert (worker_token["Type"], worker_token["KeyId"]) == ("SecureString", KEY)  # issue 10: not alias/aws/ssm
    writes = [line for line in manager.calls.splitlines() if "put-parameter" in line and "/tokens/" in line]
    assert len(writes) == 1 and "tokens/worker" in writes[0]  # the unchanged manager token is not rewritten


# --- no secret on a command line -----------------------------------------------------------


def test_the_join_token_is_never_on_a_command_line(tmp_path: Path) -> None:
    worker = make_node(tmp_path, "worker", real_api=True)
    formed_swarm(worker)
    result = worker.run("bootstrap", "10")
    assert result.returncode == 0, result.stderr
    assert worker.read("engine.json")["joined"]["JoinToken"] == WORKER_TOKEN
    assert WORKER_TOKEN not in worker.calls and MANAGER_TOKEN not in worker.calls
    assert "security-credentials/node-role" in worker.calls  # the script's own client signed the reads


# --- the bootstrap log to CloudWatch Logs (aws_api, signed, no CLI) --------------------------

LOG_GROUPS = {"bootstrap": "/swarmstack/prod/bootstrap", "events": "/swarmstack/prod/events",
              "containers": "/swarmstack/prod/containers", "prune": "/swarmstack/prod/prune"}


def test_the_bootstrap_log_is_shipped_once_line_by_line_and_blank_lines_cost_no_call(tmp_path: Path) -> None:
    """Each run ships the lines its log gained since the last shipment, a stream per
    instance created once; a stretch of blank lines is passed over without a call
    (PutLogEvents refuses an empty batch, which would stop the shipping for good)."""
    worker = make_node(tmp_path, "worker", real_api=True, log_groups=LOG_GROUPS)
    formed_swarm(worker)
    assert worker.run("bootstrap", "10").returncode == 0
    stream = f"/swarmstack/prod/bootstrap {ME}"
    shipped = worker.read("cloud.json")["log_streams"][stream]
    assert shipped and all(ME in line for line in shipped), shipped
    assert shipped == (worker.dir / "bootstrap.log").read_text().splitlines()
    with open(worker.dir / "bootstrap.log", "a") as log:
        log.write("\n  \n\n")
    # ship_file alone (every command logs a line before it ships): only blank lines are new
    script = worker.dir / "swarmstack-node"
    text = script.read_text()
    script.write_text(text.replace('\nmain "$@"', '\nload_identity && ship_log'))
    calls = len(worker.calls.splitlines())
    result = worker.run()
    assert result.returncode == 0 and "failed" not in result.stderr, result.stderr
    assert not [line for line in worker.calls.splitlines()[calls:] if " logs " in line]
    assert worker.read("cloud.json")["log_streams"][stream] == shipped
    assert (worker.dir / "state" / "log.offset").read_text() == str((worker.dir / "bootstrap.log").stat().st_size)
    script.write_text(text)
    assert worker.run("bootstrap", "10").returncode == 0
    again = worker.read("cloud.json")["log_streams"][stream]
    assert again[:len(shipped)] == shipped and "" not in again and len(again) > len(shipped)
    assert again == [line for line in (worker.dir / "bootstrap.log").read_text().splitlines() if line.strip()]
    calls_made = worker.calls.splitlines()
    assert sum(" logs create-log-stream " in line for line in calls_made) == 1
    assert all(line.startswith("--via api logs ") for line in calls_made if " logs " in line)


def test_a_long_backlog_ships_a_thousand_lines_a_run_and_does_not_end_the_run(tmp_path: Path) -> None:
    """`head` ends the pipe that cuts a batch early; under pipefail SIGPIPE's 141 ended the
    whole run (set -e) before the batch went, on every run after (watch ships the engine's
    events this way: a manager's heal never ran)."""
    worker = make_node(tmp_path, "worker", log_groups=LOG_GROUPS)
    lines = [f"line {i} " + "x" * 60 for i in range(20000)]  # over a pipe's buffer: tail is cut off
    # (each a statement of its own, as cmd_watch calls ship_events: set -e applies)
    (worker.dir / "bootstrap.log").write_text("".join(f"{line}\n" for line in lines))
    for directory in ("state", "run"):  # as main makes them
        (worker.dir / directory).mkdir()
    script = worker.dir / "swarmstack-node"
    script.write_text(script.read_text().replace(
        '\nmain "$@"', '\nload_identity\nship_file "$BOOTSTRAP_LOG_GROUP" "$LOG_FILE" log\necho shipped'))
    for batch in range(2):
        result = worker.run()
        assert result.returncode == 0 and "shipped" in result.stdout and "failed" not in result.stderr, \
            (batch, result.stderr)
    assert worker.read("cloud.json")["log_streams"][f"/swarmstack/prod/bootstrap {ME}"] == lines[:2000]



def test_a_line_over_putlogevents_limits_is_cut_and_the_shipping_goes_on(tmp_path: Path) -> None:
    """A batch is read as at most 800,000 bytes, but an invalid UTF-8 byte becomes a
    3-byte U+FFFD and one line may hold the whole batch: PutLogEvents refused such a
    batch (over 1,048,576 bytes, or an event over 256 KiB) on every run, the offset never
    moved, and nothing after it was ever shipped. The script's own client cuts an event
    to fit and stops the batch at the limit: what is cut is lost, the shipping goes on."""
    worker = make_node(tmp_path, "worker", real_api=True, log_groups=LOG_GROUPS)
    for directory in ("state", "run"):  # as main makes them
        (worker.dir / directory).mkdir()
    with open(worker.dir / "bootstrap.log", "wb") as log:
        log.write(b"before\n" + b"\xff" * 300000 + b"\n" + b"y" * 400000 + b"\n")
    script = worker.dir / "swarmstack-node"
    text = script.read_text()
    script.write_text(text.replace('\nmain "$@"', '\nload_identity\nship_log\necho shipped'))
    assert worker.run().returncode == 0
    stream = f"/swarmstack/prod/bootstrap {ME}"
    shipped = worker.read("cloud.json")["log_streams"][stream]
    assert shipped[0] == "before" and len(shipped) >= 2, [len(m) for m in shipped]
    assert all(len(m.encode()) + 26 <= 262144 for m in shipped)
    with open(worker.dir / "bootstrap.log", "ab") as log:
        log.write(b"after\n")
    assert worker.run().returncode == 0
    assert worker.read("cloud.json")["log_streams"][stream][-1] == "after"

# --- destroy: the last manager leaves at once -----------------------------------------------


def terminating(node: Node, desired: int) -> None:
    node.update("imds.json", **{"meta-data/autoscaling/target-lifecycle-state": "Terminated"})
    node.update("cloud.json", groups={GROUP: {"desired": desired, "instances": [ME]}},
                pending=["swarmstack-drain " + ME])
    node.update("engine.json", state="active", manager=True, leader=True, node_ls=["true Leader"])


def test_the_last_manager_leaves_by_force_and_completes_its_hook_at_once(manager: Node) -> None:
    """Issue 9, item 5: the last manager could not demote itself, died, and AWS waited
    out the 900 s heartbeat, longer than Pulumi's delete timeout."""
    terminating(manager, desired=1)
    started = time.monotonic()
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20  # no wait that is not a sleep (a lock, a timeout)
    assert sum(manager.sleeps) < 20, manager.sleeps  # nor a sleep (the script's own clock: VIRTUAL_CLOCK)
    assert manager.read("engine.json")["state"] == "inactive"
    assert manager.read("cloud.json")["actions"] == [f"swarmstack-drain {ME} CONTINUE"]


def test_a_group_scaled_to_zero_leaves_at_once_even_when_raft_refuses_a_demotion(manager: Node) -> None:
    terminating(manager, desired=0)
    manager.update("engine.json", node_ls=["true Leader", "false Reachable", "false Reachable"], demote_refused=True)
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "the whole group is going" in result.stderr
    assert manager.read("cloud.json")["actions"] == [f"swarmstack-drain {ME} CONTINUE"]


# --- a node that cannot converge says so and is replaced --------------------------------------


def test_a_node_that_cannot_join_within_its_deadline_marks_itself_unhealthy(tmp_path: Path) -> None:
    deadline = 4  # the script reads the clock itself (`date` against the tokens-seen file's time)
    node = make_node(tmp_path, "worker", converge_deadline_seconds=deadline, join_wait_seconds=1)
    formed_swarm(node)  # the tokens are there (a worker's clock starts then), but they are refused
    node.update("engine.json", valid_tokens=[])
    node.update("cloud.json", pending=["swarmstack-join " + ME], groups={GROUP: {"desired": 3, "instances": [ME]}})
    first = node.run("converge")
    assert first.returncode != 0 and "not in the swarm" in first.stderr
    assert "health" not in node.read("cloud.json")
    seen = tmp_path / "run" / "tokens-seen"
    assert seen.exists()
    # the deadline counts from when the tokens were first seen (however long the run took):
    # that moment moved back past it, as if the node had waited that long
    first_seen = seen.stat().st_mtime - deadline - 2
    os.utime(seen, (first_seen, first_seen))
    second = node.run("converge")
    assert second.returncode != 0 and "marking this node unhealthy" in second.stderr
    state = node.read("cloud.json")
    assert state["actions"] == [f"swarmstack-join {ME} ABANDON"] and state["health"] == {ME: "Unhealthy"}
    third = node.run("converge")  # once is enough
    assert third.returncode != 0 and "marking this node unhealthy" not in third.stderr


def test_a_worker_waiting_for_the_first_manager_is_not_marked_unhealthy(tmp_path: Path) -> None:
    """Workers boot with the managers; before a manager has formed the swarm there is
    nothing a worker can do, and replacing it would not help."""
    node = make_node(tmp_path, "worker", converge_deadline_seconds=1, join_wait_seconds=1)
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "converging-since").write_text(str(int(time.time()) - 3600))
    result = node.run("converge")
    assert result.returncode != 0 and "marking this node unhealthy" not in result.stderr


def test_a_node_that_joined_completes_its_launch_hook(tmp_path: Path) -> None:
    node = make_node(tmp_path, "manager")
    node.update("cloud.json", pending=["swarmstack-join " + ME])
    result = node.run("converge")
    assert result.returncode == 0, result.stderr
    assert node.read("cloud.json")["actions"] == [f"swarmstack-join {ME} CONTINUE"]
    assert os.path.exists(tmp_path / "run" / "converged")


# --- the Docker API: the distribution's own command line, certificates when they exist ------

VENDOR_UNITS = {
    # Amazon Linux 2023's docker package (dockerd in /usr/bin, its $OPTIONS carry the ulimits).
    "amazonlinux": "[Service]\nType=notify\nEnvironmentFile=-/etc/sysconfig/docker\n"
                   "ExecStartPre=/bin/mkdir -p /run/docker\n"
                   "ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $OPTIONS "
                   "$DOCKER_STORAGE_OPTIONS $DOCKER_ADD_RUNTIMES\nExecReload=/bin/kill -s HUP $MAINPID\n",
    # Debian's and Ubuntu's docker.io (dockerd in /usr/sbin), a continuation line for good measure.
    "debian": "[Service]\nEnvironmentFile=-/etc/default/docker\nExecStart=/usr/sbin/dockerd -H fd:// \\\n"
              "  $DOCKER_OPTS\n",
}


def api_manager(tmp: Path, vendor: str, real_api: bool = False) -> Node:
    node = make_node(tmp, "manager", real_api=real_api)
    script = node.dir / "swarmstack-node"
    script.write_text(script.read_text().replace("readonly DOCKER_API=false", "readonly DOCKER_API=true"))
    unit = tmp / "docker.service"
    unit.write_text(VENDOR_UNITS[vendor])
    (tmp / "bin" / "systemctl").write_text(
        f'#!/bin/sh\n[ "$1" = show ] && {{ echo {unit}; exit 0; }}\nexit 0\n')
    return node


def tls_set(server_key_of: str = "server") -> dict[str, str]:
    """A CA, a server certificate it signed and a key: the three TLS parameters. With
    `server_key_of="other"` the key is not the certificate's (a deploy half done)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem_key(key: Any) -> str:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()

    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key, other = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "managers")]))
              .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(2).not_valid_before(now)
              .not_valid_after(now + datetime.timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    return {"ca-cert": ca.public_bytes(serialization.Encoding.PEM).decode(),
            "server-cert": server.public_bytes(serialization.Encoding.PEM).decode(),
            "server-key": pem_key(server_key if server_key_of == "server" else other)}


def store_tls(node: Node, values: dict[str, str]) -> None:
    node.update("cloud.json", parameters={f"/swarmstack/prod/tls/{name}": {"Value": value, "Type": "String"}
                                          for name, value in values.items()})


@pytest.mark.parametrize(("vendor", "command_line"), [
    ("amazonlinux", "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $OPTIONS "
                    "$DOCKER_STORAGE_OPTIONS $DOCKER_ADD_RUNTIMES"),
    ("debian", "/usr/sbin/dockerd -H fd://   $DOCKER_OPTS"),
])
def test_the_api_extends_the_distributions_own_command_line(tmp_path: Path, vendor: str, command_line: str) -> None:
    """Issue 9, item 2: the drop-in hard-coded /usr/bin/dockerd (Debian's is in /usr/sbin)
    and dropped the distribution's options (Amazon Linux's $OPTIONS)."""
    node = api_manager(tmp_path, vendor)
    values = tls_set()
    store_tls(node, values)
    result = node.run("configure")
    assert result.returncode == 0, result.stderr
    dropin = (tmp_path / "dropin.conf").read_text().splitlines()
    assert dropin[-2:] == ["ExecStart=", f"ExecStart={command_line} -H tcp://0.0.0.0:2376"]
    daemon = node.read("daemon.json")
    assert daemon["tlsverify"] is True and "hosts" not in daemon
    assert (tmp_path / "tls" / "server-key.pem").read_text().strip() == values["server-key"].strip()
    assert oct((tmp_path / "tls" / "server-key.pem").stat().st_mode & 0o777) == "0o600"


def test_without_certificates_the_engine_starts_without_the_api_and_keeps_the_last_good_ones(tmp_path: Path) -> None:
    """Issue 9, item 1: a manager booting before its TLS parameters exist failed once and
    never started the engine. (The script's own signed client: the three files come through
    a private directory, each written 0600; what a run stopped halfway left is cleared.)"""
    node = api_manager(tmp_path, "debian", real_api=True)
    first = node.run("configure")
    assert first.returncode != 0 and "not in the store yet" in first.stderr
    assert not (tmp_path / "dropin.conf").exists() and "tlsverify" not in node.read("daemon.json")
    good = tls_set()
    store_tls(node, {name: value for name, value in good.items() if name != "server-key"})
    assert "not in the store yet" in node.run("configure").stderr  # two of three: none is written
    assert not list((tmp_path / "tls").iterdir())
    store_tls(node, good)
    (tmp_path / "tls" / ".fetch.left").mkdir()
    assert node.run("configure").returncode == 0 and node.read("daemon.json")["tlsverify"] is True
    assert sorted(f.name for f in (tmp_path / "tls").iterdir()) == ["ca.pem", "server-cert.pem", "server-key.pem"]
    assert {oct(f.stat().st_mode & 0o777) for f in (tmp_path / "tls").iterdir()} == {"0o600"}
    assert (tmp_path / "tls" / "ca.pem").read_text() == good["ca-cert"].rstrip("\n") + "\n"
    node.write("faults.json", {"ssm get-parameters": "InternalServerError"})
    kept = node.run("configure")
    assert kept.returncode == 0 and "keeping the last good files" in kept.stderr
    assert node.read("daemon.json")["tlsverify"] is True and (tmp_path / "dropin.conf").exists()


def test_a_certificate_key_and_ca_that_do_not_fit_together_are_never_installed(tmp_path: Path) -> None:
    """The three are separate secrets that a deploy rewrites one by one: a run in between
    reads a new key beside the old certificate, and dockerd would refuse to start with it.
    The last good set stays; with none, the API waits."""
    node = api_manager(tmp_path, "debian")
    store_tls(node, tls_set(server_key_of="other"))
    first = node.run("configure")
    assert first.returncode != 0 and "do not fit together" in first.stderr
    assert not (tmp_path / "tls" / "server-key.pem").exists() and "tlsverify" not in node.read("daemon.json")
    good = tls_set()
    store_tls(node, good)
    assert node.run("configure").returncode == 0 and node.read("daemon.json")["tlsverify"] is True
    half = {**tls_set(server_key_of="other"), "ca-cert": good["ca-cert"]}
    store_tls(node, half)
    kept = node.run("configure")
    assert kept.returncode == 0 and "do not fit together" in kept.stderr
    for name, file in (("ca-cert", "ca.pem"), ("server-cert", "server-cert.pem"), ("server-key", "server-key.pem")):
        assert (tmp_path / "tls" / file).read_text().strip() == good[name].strip(), file


# --- from the review of the first version -------------------------------------------------------


def test_the_election_winner_that_died_before_init_inits_on_its_next_run(manager: Node) -> None:
    """A run that created the marker and died (or whose `swarm init` failed) left a marker
    naming itself: nobody else would ever init, and it refused its own marker as stale."""
    manager.update("cloud.json", parameters={f"{STORE}/init": {"Value": f"{ME} {int(time.time())}", "Type": "String"}})
    result = manager.run("bootstrap", "10")
    assert result.returncode == 0, result.stderr
    assert "the init marker is ours and no tokens are stored" in result.stderr
    assert manager.read("engine.json")["inits"] == 1
    assert manager.parameters[f"{STORE}/tokens/manager"]["Value"] == MANAGER_TOKEN


def test_a_member_waiting_for_its_quorum_after_a_reboot_is_never_made_to_leave(manager: Node) -> None:
    """`pending` is also what a manager reports while raft has no quorum yet (managers
    rebooted one after the other): `swarm leave --force` there would throw raft away."""
    formed_swarm(manager)
    manager.update("engine.json", state="pending", manager=True)
    result = manager.run("bootstrap", "2")
    assert result.returncode != 0 and "waiting for it to become active" in result.stderr
    assert "swarm leave" not in manager.calls and manager.read("engine.json")["state"] == "pending"


def test_a_node_that_was_in_the_swarm_is_never_marked_unhealthy(tmp_path: Path) -> None:
    """A lost quorum (two of three managers down) left the survivor failing every run: it
    marked itself unhealthy, and its replacement destroyed the last copy of raft."""
    node = make_node(tmp_path, "manager", converge_deadline_seconds=1, join_wait_seconds=1)
    formed_swarm(node)
    node.update("engine.json", state="error", manager=True)  # has an identity: it was a member
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "joined-once").write_text("")
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "converging-since").write_text(str(int(time.time()) - 3600))
    result = node.run("converge")
    assert result.returncode != 0
    assert "marking this node unhealthy" not in result.stderr and "health" not in node.read("cloud.json")


def test_converge_does_nothing_once_the_node_is_leaving(manager: Node) -> None:
    terminating(manager, desired=1)
    assert manager.run("watch").returncode == 0
    again = manager.run("converge")
    assert again.returncode == 0 and "this node is leaving the swarm" in again.stderr
    assert manager.read("engine.json")["state"] == "inactive"  # not re-joined


def test_a_manager_that_cannot_list_the_managers_does_not_take_itself_for_the_last(manager: Node) -> None:
    terminating(manager, desired=3)
    manager.update("engine.json", node_ls_fails=True)
    result = manager.run("watch", timeout=120)
    assert "the last manager" not in result.stderr
    assert "drained myself" in result.stderr


def test_a_broken_base_config_never_truncates_daemon_json(manager: Node) -> None:
    assert manager.run("configure").returncode == 0
    good = (manager.dir / "daemon.json").read_text()
    (manager.dir / "daemon.base.json").write_text("{not json")
    result = manager.run("configure")
    assert result.returncode != 0 and "cannot render" in result.stderr
    assert (manager.dir / "daemon.json").read_text() == good


def test_a_node_terminated_while_its_join_is_under_way_does_not_stay_behind(manager: Node) -> None:
    """Real-boot destroy, once in three: the watcher saw `pending` (a join a converge run
    had started), took it for "not in a swarm" and completed the hook; the join then
    finished on a machine about to vanish."""
    terminating(manager, desired=1)
    manager.update("engine.json", state="pending", manager=False, leader=False)
    result = manager.run("watch", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "waiting for it before leaving" in result.stderr
    # it did wait for the join, its 60 s, polling the engine, before leaving
    assert len(manager.sleeps) >= 2 and 60 <= sum(manager.sleeps) <= 63, manager.sleeps
    assert "docker swarm leave --force" in manager.calls
    assert manager.read("engine.json")["state"] == "inactive"
    assert manager.read("cloud.json")["actions"] == [f"swarmstack-drain {ME} CONTINUE"]


# join_swarm gives a timed-out join 6 s, then 114 s more if it has a node identity.
def test_a_join_sent_during_an_election_that_never_got_an_identity_is_left_and_tried_elsewhere(manager: Node) -> None:
    """Bootstrap benchmark, leader killed: the replacement's join reached a follower during the
    election; the engine answered "Timeout was reached ... will continue in the background",
    still had no node identity two minutes later, and the script waited all 120 s of them
    before it tried another manager (a 152 s heal). Then 45 s: with an election that outlasted
    the engine's 20 s (a follower held 30 s: tests/integration/test_bootstrap.py, test 8), the
    engine's swarm node quit 5 s after the answer, was never started again, and the script
    waited 40 s more for it, while the join sent anew after the leave was in within 2 s (a
    69 s heal)."""
    formed_swarm(manager)
    manager.update("cloud.json", parameters={**manager.parameters, f"{STORE}/managers": {
        "Value": "10.0.1.20,10.0.1.21", "Type": "String"}})
    manager.update("engine.json", stuck_joins=1)
    result = manager.run("bootstrap", "300", timeout=60)
    assert result.returncode == 0, result.stderr
    # 6 s for the join, looked at every 2 s, not 45 (the script's own clock: VIRTUAL_CLOCK)
    assert manager.sleeps == [2] * 3, "it waited for a join that had no node identity"
    assert "Timeout was reached" in result.stderr
    assert manager.calls.count("docker swarm leave --force") == 1
    first, second = (manager.dir / "joins.log").read_text().splitlines()
    assert first != second, "the next manager was not the one tried"
    engine = manager.read("engine.json")
    assert engine["state"] == "active" and engine["joined"]["JoinToken"] == MANAGER_TOKEN


def test_a_timed_out_join_that_has_a_node_identity_is_waited_for_never_left(manager: Node) -> None:
    """The other side: a join that got its certificate (a node identity) is under way; leaving
    it could strand a raft member."""
    formed_swarm(manager)
    manager.update("engine.json", stuck_joins=1, stuck_identity=True)
    result = manager.run("bootstrap", "30", timeout=60)
    assert result.returncode != 0 and "docker swarm leave" not in manager.calls, result.stderr
    assert manager.read("engine.json")["state"] == "pending"  # run again later; never thrown away
    assert sum(manager.sleeps) >= 6 + 114, manager.sleeps  # it waited for the join: 6 s, then 114 more


def test_a_timed_out_join_whose_engine_does_not_say_its_identity_is_never_left(manager: Node) -> None:
    """Review: `docker info` that timed out read as "no node ID", and the join was left with
    `--force` (a manager that had joined raft would strand its seat). An engine that does
    not say is taken to have one."""
    formed_swarm(manager)
    manager.update("engine.json", stuck_joins=1, node_id_unanswered=True)
    result = manager.run("bootstrap", "30", timeout=60)
    assert result.returncode != 0 and "docker swarm leave" not in manager.calls, result.stderr
    assert manager.read("engine.json")["state"] == "pending"
    assert sum(manager.sleeps) >= 6 + 114, manager.sleeps  # it waited for the join: 6 s, then 114 more


def test_an_engine_in_error_with_no_node_id_is_left_and_joins_again(manager: Node) -> None:
    """The other side (second review): an engine whose certificate expired stays in `error`,
    reports no node ID and keeps the certificate on disk; moby says to leave and join
    again. The file alone is no identity, or the node would wait on every run, for good."""
    formed_swarm(manager)
    manager.update("engine.json", state="error", identity=False)
    certificates = manager.dir / "docker" / "swarm" / "certificates"
    certificates.mkdir(parents=True)
    (certificates / "swarm-node.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    result = manager.run("bootstrap", "30", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "docker swarm leave --force" in manager.calls
    assert manager.read("engine.json")["state"] == "active"


def test_a_manager_whose_engine_is_slow_to_answer_during_an_election_still_leaves(manager: Node) -> None:
    """Real-boot destroy (CI, stop 17): the first manager left at once, the other two
    elected a leader, `docker info` took longer than its 10 s timeout, the watcher took
    "unknown" for "not in a swarm" and completed the hook; both disks kept the swarm."""
    terminating(manager, desired=0)
    manager.update("engine.json", info_unanswered=2)
    result = manager.run("watch", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "nothing to leave" not in result.stderr
    assert manager.read("engine.json")["state"] == "inactive"
    assert manager.read("cloud.json")["actions"] == [f"swarmstack-drain {ME} CONTINUE"]


# --- trusted labels: the cloud says which pool a node is in ---------------------------


def labelling_leader(node: Node, rows: list[str], machines: list[list[str]]) -> None:
    formed_swarm(node)
    node.update("engine.json", state="active", manager=True, leader=True,
                node_ls=[row.split()[0] for row in rows], label_rows=rows)
    node.update("cloud.json", machines=machines)


def label_updates(node: Node) -> list[str]:
    return [line for line in node.calls.splitlines() if line.startswith("docker node update --label-add")]


def test_the_leader_labels_a_node_from_what_the_cloud_says_about_its_instance(manager: Node) -> None:
    """Issue 10: the leader copied every engine label onto the node, and a node writes its
    engine labels itself, so any worker could claim any pool's placement labels."""
    labelling_leader(manager, ["n-honest i-honest 10.0.2.5 - -", "n-batch i-batch 10.0.2.6 - -"],
                     [["i-honest", "general", "eu-west-1a", "m6i.large", "10.0.2.5"],
                      ["i-batch", "batch", "eu-west-1b", "c6i.xlarge", "10.0.2.6"]])
    result = manager.run("cleanup")
    assert result.returncode == 0, result.stderr
    assert label_updates(manager) == [
        "docker node update --label-add swarmstack.role=worker --label-add swarmstack.pool=general "
        "--label-add swarmstack.zone=eu-west-1a --label-add swarmstack.instance-type=m6i.large "
        "--label-add tier=app --label-add swarmstack.instance-id=i-honest n-honest",
        "docker node update --label-add swarmstack.role=worker --label-add swarmstack.pool=batch "
        "--label-add swarmstack.zone=eu-west-1b --label-add swarmstack.instance-type=c6i.xlarge "
        "--label-add tier=batch --label-add swarmstack.instance-id=i-batch n-batch"]


def test_a_node_claiming_another_instance_or_none_of_the_clusters_is_never_labelled(manager: Node) -> None:
    labelling_leader(manager, ["n-liar i-batch 10.0.2.6 - -", "n-stranger i-elsewhere 10.0.2.7 - -"],
                     [["i-batch", "batch", "eu-west-1b", "c6i.xlarge", "10.0.2.9"]])
    result = manager.run("cleanup")
    assert result.returncode == 0, result.stderr
    assert label_updates(manager) == []
    assert "node n-liar at 10.0.2.6 claims to be instance i-batch, whose addresses are 10.0.2.9" in result.stderr
    assert "i-elsewhere, which is not one of the cluster's machines" in result.stderr


def test_the_leader_asks_the_cloud_only_while_a_node_is_unlabelled(manager: Node) -> None:
    """A thousand labelled nodes cost no EC2 call a minute (issue 16)."""
    labelling_leader(manager, ["n-1 i-1 10.0.2.5 - i-1", "n-m i-m 0.0.0.0 10.0.1.10:2377 i-m"], [])
    result = manager.run("cleanup")
    assert result.returncode == 0, result.stderr
    assert label_updates(manager) == []
    assert "ec2 describe-instances --filters Name=tag:swarmstack:cluster" not in manager.calls


def test_a_manager_whose_own_address_reads_0000_is_labelled_from_its_raft_address(manager: Node) -> None:
    labelling_leader(manager, ["n-m i-m 0.0.0.0 10.0.1.10:2377 -"],
                     [["i-m", "managers", "eu-west-1a", "m6i.large", "10.0.1.10"]])
    result = manager.run("cleanup")
    assert result.returncode == 0, result.stderr
    assert label_updates(manager) == [
        "docker node update --label-add swarmstack.role=manager --label-add swarmstack.pool=managers "
        "--label-add swarmstack.zone=eu-west-1a --label-add swarmstack.instance-type=m6i.large "
        "--label-add swarmstack.instance-id=i-m n-m"]


# --- raft backups and restore (issue 11) -------------------------------------------------

BUCKET = "s3://prod-backups-123456789012-eu-west-1"


@pytest.fixture
def backed_up(tmp_path: Path) -> Iterator[Node]:
    node = make_node(tmp_path, "manager", backup_store=BUCKET)
    formed_swarm(node)
    node.update("engine.json", state="active", manager=True, leader=False,
                manager_status=["self-node Reachable", "a-node Leader", "z-node Reachable"],
                node_ls=["true Reachable", "false Leader", "false Reachable"])
    swarm = node.dir / "docker" / "swarm" / "raft"
    swarm.mkdir(parents=True)
    (swarm / "wal-0").write_text("raft log")
    (swarm.parent / "docker-state.json").write_text(json.dumps(
        {"LocalAddr": "10.0.1.5", "ListenAddr": "10.0.1.5:2377", "AdvertiseAddr": "10.0.1.5:2377", "DataPathPort": 4789}))
    stock_restore_tool(node)  # `pulumi up` wrote it: the backup and the restore run from it
    yield node


def backups(node: Node) -> list[str]:
    """The keys of the backups in the bucket (beside them: the restore tool)."""
    return [key for key in node.read("cloud.json").get("objects", {}) if key.startswith("swarm/")]


def archive_of(node: Node, key: str) -> dict[str, str]:
    import io
    import tarfile

    body = bytes.fromhex(node.read("cloud.json")["objects"][key]["body"])
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_a_follower_backs_up_the_raft_state_with_its_engine_stopped_under_the_cluster_key(backed_up: Node) -> None:
    result = backed_up.run("backup")
    assert result.returncode == 0, result.stderr
    objects = backed_up.read("cloud.json")["objects"]
    [key] = backups(backed_up)
    assert key.endswith(f"-{ME}.tar.gz")
    assert (objects[key]["sse"], objects[key]["kms"]) == ("aws:kms", KEY)
    assert set(archive_of(backed_up, key)) == {"swarm/raft/wal-0", "swarm/docker-state.json"}
    assert archive_of(backed_up, key)["swarm/raft/wal-0"] == "raft log"
    calls = backed_up.calls.splitlines()
    stop, start = calls.index("systemctl stop docker.socket docker.service"), calls.index("systemctl start docker.service")
    assert stop < start < next(i for i, c in enumerate(calls) if "s3api put-object" in c)


def test_only_the_first_reachable_follower_takes_the_backup(backed_up: Node) -> None:
    """Stopping the leader's engine would force an election; every manager's timer fires."""
    for status in (["self-node Leader", "a-node Reachable"], ["self-node Reachable", "a-node Reachable"]):
        backed_up.update("engine.json", manager_status=status)
        result = backed_up.run("backup")
        assert result.returncode == 0, result.stderr
        assert "another manager takes this backup" in result.stderr
    assert backups(backed_up) == [] and "systemctl stop" not in backed_up.calls


def test_no_backup_stops_an_engine_while_another_manager_is_unreachable(backed_up: Node) -> None:
    backed_up.update("engine.json", node_ls=["true Reachable", "false Leader", "false Unreachable"])
    result = backed_up.run("backup")
    assert result.returncode != 0 and "another manager is unreachable" in result.stderr
    assert "systemctl stop docker" not in backed_up.calls


LEASE = "swarmstack-engine-lease"


def test_a_backup_holds_the_engine_lease_while_its_engine_is_stopped_and_gives_it_back(backed_up: Node) -> None:
    result = backed_up.run("backup")
    assert result.returncode == 0, result.stderr
    calls = backed_up.calls.splitlines()
    take = next(i for i, c in enumerate(calls) if c.startswith(f"docker config create --label swarmstack.holder=self-node {LEASE}"))
    stop = calls.index("systemctl stop docker.socket docker.service")
    give = next(i for i, c in enumerate(calls) if c.startswith("docker config rm "))
    assert take < stop < give
    assert backed_up.read("engine.json")["configs"] == {}


def test_no_engine_stops_while_another_manager_holds_the_engine_lease(backed_up: Node) -> None:
    """Two managers that both see every other one reachable (a certificate renewal reaches
    all at once, a backup meanwhile): the lease lets one stop its engine, never two. A
    holder the swarm cannot be asked about (an election) is no stale holder."""
    import time

    for engine in ({}, {"unanswered_nodes": ["a-node"]}):
        backed_up.update("engine.json", roles={"a-node": "manager"}, **engine, configs={
            LEASE: {"id": "cfg-other", "created": int(time.time()) - 60, "labels": {"swarmstack.holder": "a-node"}}})
        result = backed_up.run("backup")
        assert result.returncode != 0 and "holds the engine lease" in result.stderr, result.stderr
        assert "systemctl stop docker" not in backed_up.calls
        assert backed_up.read("engine.json")["configs"][LEASE]["id"] == "cfg-other"


@pytest.mark.parametrize("holder, seen_for", [("a-node", 3600), ("gone-node", 0), ("demoted-node", 0)])
def test_a_lease_whose_holder_died_is_taken_over_by_its_id(backed_up: Node, holder: str, seen_for: int) -> None:
    """Seen by this node (its own clock) for longer than any restart takes, or held by a node
    that is positively no manager of this swarm."""
    import time

    backed_up.update("engine.json", gone_nodes=["gone-node"], roles={"a-node": "manager", "demoted-node": "worker"},
                     configs={LEASE: {"id": "cfg-stale", "created": int(time.time()), "labels": {"swarmstack.holder": holder}}})
    if seen_for:
        (backed_up.dir / "state").mkdir(exist_ok=True)
        (backed_up.dir / "state" / "lease-seen").write_text(f"cfg-stale {int(time.time()) - seen_for}\n")
    result = backed_up.run("backup")
    assert result.returncode == 0, result.stderr
    assert "docker config rm cfg-stale" in backed_up.calls
    assert "systemctl stop docker.socket docker.service" in backed_up.calls
    assert backed_up.read("engine.json")["configs"] == {}


def test_a_lease_first_seen_now_is_not_stale_whatever_the_leaders_clock_says(backed_up: Node) -> None:
    """CreatedAt is the leader's clock; a node whose clock runs ahead must not take it over."""
    backed_up.update("engine.json", roles={"a-node": "manager"}, configs={
        LEASE: {"id": "cfg-other", "created": 0, "labels": {"swarmstack.holder": "a-node"}}})
    result = backed_up.run("backup")
    assert result.returncode != 0 and "holds the engine lease" in result.stderr, result.stderr
    assert (backed_up.dir / "state" / "lease-seen").read_text().split()[0] == "cfg-other"


def stock_restore_tool(node: Node, text: str | None = None) -> None:
    """The restore tool in the bucket, as `pulumi up` writes it (or TEXT instead, under its key)."""
    objects = node.read("cloud.json").get("objects", {})
    body = (node.dir / "restore.sh").read_text() if text is None else text
    objects[tool_key(node)] = {"bucket": BUCKET, "body": body.encode().hex(), "sse": "aws:kms", "kms": KEY}
    node.update("cloud.json", objects=objects)


def tool_key(node: Node) -> str:
    """The key the node's user data names: its rendered tool's."""
    return restore_tool_key((node.dir / "restore.sh").read_text())


def unstock_restore_tool(node: Node) -> None:
    objects = node.read("cloud.json").get("objects", {})
    objects.pop(tool_key(node), None)
    node.update("cloud.json", objects=objects)


def test_restore_puts_the_newest_backup_in_place_and_forces_a_new_cluster(backed_up: Node) -> None:
    assert backed_up.run("backup").returncode == 0
    [newest] = backups(backed_up)
    objects = backed_up.read("cloud.json")["objects"]
    objects["swarm/20200101T000000Z-i-old.tar.gz"] = {**objects[newest], "body": ""}
    backed_up.update("cloud.json", objects=objects)
    # every manager lost: a fresh manager, never in a swarm, its disk empty
    (backed_up.dir / "docker" / "swarm" / "raft" / "wal-0").write_text("a fresh node's")
    # raft as the backup saw it: the taker held the engine lease while its engine was stopped
    backed_up.update("engine.json", state="inactive", manager=False, leader=False, configs={
        LEASE: {"id": "cfg-backup", "created": 0, "labels": {"swarmstack.holder": "self-node"}}})
    result = backed_up.run("restore")
    assert result.returncode == 0, result.stderr
    assert backed_up.read("engine.json")["configs"] == {}, "the old cluster's lease blocks every engine restart"
    assert (backed_up.dir / "docker" / "swarm" / "raft" / "wal-0").read_text() == "raft log"
    # the lost manager's addresses become this node's, or its engine cannot start the swarm
    assert json.loads((backed_up.dir / "docker" / "swarm" / "docker-state.json").read_text()) == {
        "LocalAddr": "10.0.1.10", "ListenAddr": "10.0.1.10:2377", "AdvertiseAddr": "10.0.1.10:2377",
        "DataPathPort": 4789}
    assert "docker swarm init --force-new-cluster --advertise-addr 10.0.1.10" in backed_up.calls
    assert f"restored the swarm from {newest}" in result.stderr
    assert not (backed_up.dir / "state" / "restoring").exists()
    assert "10.0.1.10" in backed_up.parameters[f"{STORE}/managers"]["Value"]


def test_restore_tries_init_again_while_the_old_raft_node_still_locks_its_log(backed_up: Node) -> None:
    """Seen in CI (tests/integration/test_azure_backup.py): the engine, started on the restored
    directory, runs the lost cluster's raft node; `swarm init --force-new-cluster` stops it and
    opens its log at once, and the stop had not yet let go of the lock (swarmkit#1421:
    "file already locked"). The engine keeps the state and drops the node, so the next init
    succeeds; the restore tries again instead of telling the operator to."""
    assert backed_up.run("backup").returncode == 0
    backed_up.update("engine.json", state="inactive", manager=False, leader=False, init_locked=2)
    result = backed_up.run("restore")
    assert result.returncode == 0, result.stderr
    assert backed_up.read("engine.json")["inits"] == 1
    assert backed_up.calls.count("docker swarm init --force-new-cluster") == 3
    assert "still locks its log" in result.stderr
    backed_up.update("engine.json", state="inactive", manager=False, leader=False, init_locked=9)
    result = backed_up.run("restore")
    assert result.returncode != 0 and "file already locked" in result.stderr and "run restore again" in result.stderr


def test_restore_says_so_when_there_is_no_backup(tmp_path: Path) -> None:
    node = make_node(tmp_path, "manager", backup_store=BUCKET)
    stock_restore_tool(node)
    result = node.run("restore")
    assert result.returncode != 0 and f"the backup store {BUCKET} holds no backup" in result.stderr


@pytest.mark.parametrize("state", ["active", "pending"])
def test_a_worker_whose_managers_are_all_gone_rejoins_the_restored_swarm(tmp_path: Path, state: str) -> None:
    """`pending` (review of issue 13): an orphaned worker whose engine restarted before it
    left reports `pending` (it has an identity and keeps trying its old managers), not
    `active`; the rejoin looked only at `active`, and the run took the node for a member
    catching up and waited for it, on every run, for good."""
    worker = make_node(tmp_path, "worker", join_wait_seconds=1)
    formed_swarm(worker)  # the store lists the restored manager, 10.0.1.20
    worker.update("engine.json", state=state, remote_managers=["10.0.1.5:2377", "10.0.1.6:2377"])
    (worker.dir / "closed").write_text("10.0.1.5\n10.0.1.6\n")
    result = worker.run("converge", timeout=120)
    assert "joining the restored swarm" in result.stderr, result.stderr
    assert "docker swarm leave --force" in worker.calls
    assert "joined the swarm as worker through 10.0.1.20" in result.stderr


def test_a_pending_worker_that_reaches_one_of_its_managers_is_waited_for(tmp_path: Path) -> None:
    worker = make_node(tmp_path, "worker", join_wait_seconds=1)
    formed_swarm(worker)
    worker.update("engine.json", state="pending", remote_managers=["10.0.1.5:2377", "10.0.1.20:2377"])
    (worker.dir / "closed").write_text("10.0.1.5\n")
    result = worker.run("converge", timeout=120)
    assert "swarm leave" not in worker.calls and "waiting for it to become active" in result.stderr


def test_a_worker_that_reaches_one_of_its_managers_never_rejoins(worker: Node) -> None:
    formed_swarm(worker)
    worker.update("engine.json", state="active", remote_managers=["10.0.1.5:2377", "10.0.1.20:2377"])
    (worker.dir / "closed").write_text("10.0.1.5\n")
    worker.run("converge", timeout=120)
    assert "swarm leave" not in worker.calls


def test_a_node_superseded_by_a_verified_entry_of_the_same_machine_is_removed(manager: Node) -> None:
    """A worker that re-joined a restored swarm leaves its old entry Down; the leader removes
    it, but only on labels it verified itself: a worker claiming a manager's instance id
    must never get that manager removed while it is briefly down (review of issue 11)."""
    formed_swarm(manager)
    manager.update("engine.json", state="active", manager=True, leader=True,
                   node_ls=["old-w", "new-w", "old-m", "liar"], roles={"old-m": "manager"},
                   node_table=["old-w down active worker i-w 10.0.2.5 - - i-w",
                               "new-w ready active worker i-w 10.0.2.5 - - i-w",
                               "old-m down active manager i-m 10.0.1.5 10.0.1.5:2377 unreachable i-m",
                               "liar ready active worker i-m 10.0.2.9 - - -"])
    manager.update("cloud.json", instances={ME: "running", "i-w": "running", "i-m": "running"})
    result = manager.run("cleanup")
    assert result.returncode == 0, result.stderr
    assert "docker node rm --force old-w" in manager.calls
    assert "old-m" not in "".join(line for line in manager.calls.splitlines()
                                  if " rm " in line or "demote" in line)


def test_an_archive_without_swarm_state_is_never_stored(backed_up: Node) -> None:
    """A swarm left meanwhile (the watcher had the lock) archives an empty directory; stored,
    it would become the newest backup, the one restore takes."""
    (backed_up.dir / "docker" / "swarm" / "docker-state.json").unlink()
    result = backed_up.run("backup")
    assert result.returncode != 0 and "holds no swarm state" in result.stderr
    assert backups(backed_up) == []
    calls = backed_up.calls.splitlines()
    assert calls.index("systemctl start docker.service") > calls.index("systemctl stop docker.socket docker.service")


def test_restore_refuses_on_a_machine_being_replaced(backed_up: Node) -> None:
    """Restored on a manager reported unhealthy, the swarm would leave with it (the last
    manager leaves by force when its machine is terminated)."""
    assert backed_up.run("backup").returncode == 0
    (backed_up.dir / "run").mkdir(exist_ok=True)
    (backed_up.dir / "run" / "marked-unhealthy").touch()
    stock_restore_tool(backed_up)
    result = backed_up.run("restore")
    assert result.returncode != 0 and "restore on another manager" in result.stderr
    assert "swarm init" not in backed_up.calls


def test_restore_runs_only_the_restore_tool_its_script_was_rendered_with(backed_up: Node) -> None:
    """The tool is not in the user data (EC2's 16 KiB): the node fetches it from the bucket.
    Missing, changed or written by another version of the stack, it is refused before
    anything is touched, and the message says what to do."""
    assert backed_up.run("backup").returncode == 0
    before = len(backed_up.calls.splitlines())
    unstock_restore_tool(backed_up)
    result = backed_up.run("restore")
    assert result.returncode != 0, result.stderr
    assert f"cannot read the restore tool {BUCKET}/{tool_key(backed_up)} (pulumi up writes it)" in result.stderr
    assert "NoSuchKey" in result.stderr
    tool = (backed_up.dir / "restore.sh").read_text()
    for changed in (tool.replace("--force-new-cluster", "--force-new-cluster --autolock"), tool + "echo stale\n"):
        stock_restore_tool(backed_up, changed)
        result = backed_up.run("restore")
        assert result.returncode != 0 and "is not the one this script expects" in result.stderr, result.stderr
    since = "\n".join(backed_up.calls.splitlines()[before:])
    assert "systemctl" not in since and "docker swarm" not in since, since
    assert not (backed_up.dir / "state" / "restoring").exists()
    assert not list((backed_up.dir / "run").glob("restore.*")), "a refused tool is not left behind"


def test_a_backup_runs_only_the_restore_tool_its_script_was_rendered_with(backed_up: Node) -> None:
    """cmd_backup lives in the restore tool too (EC2's 16 KiB of user data): missing or
    changed, the tool is refused before the engine is touched, and nothing is stored."""
    unstock_restore_tool(backed_up)
    result = backed_up.run("backup")
    assert result.returncode != 0 and "cannot read the restore tool" in result.stderr, result.stderr
    stock_restore_tool(backed_up, (backed_up.dir / "restore.sh").read_text() + "echo stale\n")
    result = backed_up.run("backup")
    assert result.returncode != 0 and "is not the one this script expects" in result.stderr, result.stderr
    assert "systemctl" not in backed_up.calls and "docker node" not in backed_up.calls
    assert backups(backed_up) == []
    assert not list((backed_up.dir / "run").glob("restore.*")), "a refused tool is not left behind"


def test_a_worker_has_no_restore(worker: Node) -> None:
    result = worker.run("restore")
    assert result.returncode != 0 and "restore runs on a manager" in result.stderr
    assert "s3api" not in worker.calls


def lost_leader(node: Node, instance_state: str | None) -> None:
    """This manager just won the election after the old leader's machine died: raft counts
    the old leader Unreachable, while the swarm still reads it Ready (it is marked Down only
    after its heartbeat's grace period, 20 s and more)."""
    formed_swarm(node)
    node.update("engine.json", state="active", manager=True, leader=True,
                node_ls=["me", "old-m", "w1"], roles={"old-m": "manager", "me": "manager"},
                node_table=[f"me ready active manager {ME} 10.0.1.10 10.0.1.10:2377 reachable {ME}",
                            "old-m ready active manager i-m 10.0.1.5 10.0.1.5:2377 unreachable i-m",
                            "w1 ready active worker i-w 10.0.2.5 - - i-w"])
    instances = {ME: "running", "i-w": "running"}
    if instance_state is not None:
        instances["i-m"] = instance_state
    node.update("cloud.json", instances=instances)


def test_the_leader_removes_a_dead_manager_on_its_next_watch_not_its_next_clean_up(manager: Node) -> None:
    """Issue 13, healing in seconds: the watch (every few seconds) removes a manager that raft
    lost and whose machine the cloud says is gone; the clean-up runs once a minute, and the
    swarm marks the old leader Down only after its heartbeat's grace period."""
    lost_leader(manager, "terminated")
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "docker node demote old-m" in manager.calls
    assert "docker node rm --force old-m" in manager.calls
    assert "w1" not in "".join(line for line in manager.calls.splitlines() if " rm " in line)


def test_a_dead_manager_whose_demotion_failed_is_tried_again_on_the_next_watch(manager: Node) -> None:
    """Issue 13: right after an election raft can refuse the demotion. The watch recorded the
    lost set as handled all the same and never tried again while it stayed the same: the
    dead manager waited for the minute-long clean-up (a heal of 147 s in one benchmark run)."""
    lost_leader(manager, "terminated")
    manager.update("engine.json", demote_refused=True)
    first = manager.run("watch")
    assert first.returncode == 0, first.stderr
    assert "cannot demote dead manager old-m yet" in first.stderr
    manager.update("engine.json", demote_refused=False)
    again = manager.run("watch")
    assert again.returncode == 0, again.stderr
    assert "docker node rm --force old-m" in manager.calls, again.stderr


def test_a_manager_whose_watch_finds_an_election_under_way_heals_as_soon_as_it_leads(manager: Node) -> None:
    """Issue 13, healing in seconds: the leader's machine died and raft elects (10 to 20 s).
    A watch that found no leader ended, and the new leader removed the dead manager only at
    its next watch, a period (5 s) after it won: the heal's last 5.3 s in one benchmark run.
    The watch now asks again each second and heals in the same run once it leads."""
    lost_leader(manager, "terminated")
    manager.update("engine.json", leaderless=4)
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "docker node rm --force old-m" in manager.calls, result.stderr
    assert manager.sleeps == [1] * 4, manager.sleeps


def test_a_watch_that_never_finds_a_leader_gives_up_within_twenty_tries(manager: Node) -> None:
    """The other side: a swarm without a quorum has no leader for good; the watch (which also
    hears termination notices) must end, and ask again a period later."""
    lost_leader(manager, "terminated")
    manager.update("engine.json", leaderless=1000)
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "demote" not in manager.calls and "ec2 describe-instances" not in manager.calls
    assert len(manager.sleeps) == 20, manager.sleeps


def test_a_termination_notice_ends_a_watch_s_wait_for_a_leader(manager: Node) -> None:
    """The wait for an election must not hold up a leave: a notice that arrives meanwhile
    ends it (the next watch, a period later, leaves at once)."""
    lost_leader(manager, "terminated")
    manager.update("engine.json", leaderless=1000)
    state = "meta-data/autoscaling/target-lifecycle-state"
    manager.update("imds.json", **{state: "Terminated", "_hidden_for": {state: 3}})
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert len(manager.sleeps) == 2, manager.sleeps
    assert "demote" not in manager.calls and "swarm leave" not in manager.calls


def test_an_unreachable_manager_whose_machine_runs_is_never_removed_and_asked_about_once(manager: Node) -> None:
    """A partition or a slow engine is not a death: only the cloud's word that the machine is
    gone removes a node. And a watch every few seconds asks the cloud only when the set of
    lost nodes changed, not each time."""
    lost_leader(manager, "running")
    for _ in range(3):
        result = manager.run("watch")
        assert result.returncode == 0, result.stderr
    assert "demote" not in manager.calls and " rm " not in manager.calls
    assert manager.calls.count("ec2 describe-instances") == 1, manager.calls


def test_a_follower_s_watch_never_removes_nodes(manager: Node) -> None:
    lost_leader(manager, "terminated")
    manager.update("engine.json", leader=False)
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "demote" not in manager.calls and "ec2 describe-instances" not in manager.calls


I_W, I_V = "i-0000000000000000b", "i-0000000000000000c"


def leaving_worker(node: Node, mark: str = "-", lifecycle: str = "Terminating:Wait", state: str = "running") -> None:
    """This manager leads; worker w1's machine is being taken away by the group (scale-in,
    instance refresh) and the swarm still reads it Ready."""
    formed_swarm(node)
    node.update("engine.json", state="active", manager=True, leader=True,
                node_ls=["me", "w1", "w2"], roles={"me": "manager"},
                node_table=[f"me ready active manager {ME} 10.0.1.10 10.0.1.10:2377 reachable {ME} -",
                            f"w1 ready {'drain' if mark == 'true' else 'active'} worker {I_W} 10.0.2.5 - - {I_W} {mark}",
                            f"w2 ready active worker {I_V} 10.0.2.6 - - {I_V} -"])
    node.update("cloud.json", instances={ME: "running", I_W: state, I_V: "running"},
                lifecycle={I_W: lifecycle})


def test_the_leader_s_watch_drains_a_leaving_worker_not_its_minute_long_clean_up(manager: Node) -> None:
    """Issue 13, a drained worker's lifecycle action within seconds of the notice: a worker
    cannot drain itself and waits for its tasks to move; the leader drained it only in its
    clean-up, once a minute. The watch (every 5 s) now drains it, and marks it leaving.
    The cloud is asked about the cluster's own groups (by their tag), once: Auto Scaling's
    listing of instances spans the whole region, a page per 50 instances."""
    leaving_worker(manager)
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "docker node update --availability drain --label-add swarmstack.leaving=true w1" in manager.calls
    assert "w2" not in "".join(line for line in manager.calls.splitlines() if "node update" in line)
    asked = [line for line in manager.calls.splitlines() if "autoscaling describe" in line]
    assert len(asked) == 1 and "describe-auto-scaling-groups --filters Name=tag:swarmstack:cluster,Values=prod" in asked[0]


def test_a_leaving_node_that_still_reads_ready_is_removed_once_its_machine_is_gone(manager: Node) -> None:
    """Issue 13, healing in seconds: a node that left on a termination notice reads Ready
    until the swarm's heartbeat grace period ends (15 s and more), then Down, and only then
    was it removed (notice to old node removed: 24 to 40 s in the benchmark). A node the
    leader marked leaving is asked about on each watch and removed as soon as the cloud
    says its machine is gone; never while it runs."""
    leaving_worker(manager, mark="true")
    first = manager.run("watch")
    assert first.returncode == 0, first.stderr
    assert " rm " not in manager.calls, "its machine still runs: never removed"
    manager.update("cloud.json", instances={ME: "running", I_W: "shutting-down", I_V: "running"},
                   lifecycle={I_W: "Terminating:Proceed"})
    again = manager.run("watch")
    assert again.returncode == 0, again.stderr
    assert "docker node rm --force w1" in manager.calls, again.stderr
    assert "w2" not in "".join(line for line in manager.calls.splitlines() if " rm " in line)


def test_a_node_marked_leaving_for_long_is_no_longer_asked_about_on_each_watch(manager: Node) -> None:
    """The other side: a machine that stays (a cancelled event) would cost a cloud call every
    5 s for good; after 10 minutes it is left to the clean-up's minute."""
    leaving_worker(manager, mark="true", lifecycle="InService")
    assert manager.run("watch").returncode == 0
    marked = manager.dir / "run" / "marked"
    old = time.time() - 601
    os.utime(marked, (old, old))
    for _ in range(2):
        assert manager.run("watch").returncode == 0
    assert manager.calls.count("ec2 describe-instances") == 1, manager.calls


def test_the_leader_asks_which_machines_are_leaving_at_most_every_15_seconds(manager: Node) -> None:
    """Review of the watch's drain: Auto Scaling's listing through the CLI costs about 0.7 s
    of CPU, and DescribeAutoScalingGroups is throttled per account and region. Each watch
    (every 5 s) asked: 17,280 calls a day. At most every 15 s now."""
    leaving_worker(manager, lifecycle="InService")
    for _ in range(3):
        assert manager.run("watch").returncode == 0
    assert manager.calls.count("describe-auto-scaling-groups --filters") == 1, manager.calls
    stamp = manager.dir / "run" / "drained"
    os.utime(stamp, (time.time() - 15, time.time() - 15))
    assert manager.run("watch").returncode == 0
    assert manager.calls.count("describe-auto-scaling-groups --filters") == 2, manager.calls


def test_a_throttled_leaving_check_costs_one_try_and_never_holds_up_a_removal(manager: Node) -> None:
    """A throttled call retried up to 6 times, 30 s apart, held the watch for minutes, and
    with it the removal of a dead manager and the leader's own termination notice."""
    lost_leader(manager, "terminated")
    manager.write("faults.json", {"autoscaling describe-auto-scaling-groups": "Throttling"})
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "docker node rm --force old-m" in manager.calls, result.stderr
    assert manager.calls.count("describe-auto-scaling-groups --filters") == 1, manager.calls
    assert manager.sleeps == [], manager.sleeps
    calls = manager.calls
    assert calls.index("docker node rm --force old-m") < calls.index("describe-auto-scaling-groups --filters")


def test_a_throttled_removal_never_holds_up_the_drain_of_a_leaving_worker(manager: Node) -> None:
    """The other order (review of c9ab7f3): the removal's EC2 look-up, retried up to 6 times,
    30 s apart, held the drain behind it on every watch while EC2 throttled. One try each
    (the next watch, 5 s later, tries again; the clean-up retries in full)."""
    leaving_worker(manager)
    table = manager.read("engine.json")["node_table"] + [
        "old-m ready active manager i-0000000000000000d 10.0.1.5 10.0.1.5:2377 unreachable i-0000000000000000d -"]
    manager.update("engine.json", node_table=table, node_ls=["me", "w1", "w2", "old-m"])
    manager.write("faults.json", {"ec2 describe-instances": "RequestLimitExceeded"})
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "docker node update --availability drain --label-add swarmstack.leaving=true w1" in manager.calls
    assert manager.sleeps == [], manager.sleeps
    manager.write("faults.json", {})
    again = manager.run("watch")
    assert "docker node rm --force old-m" in manager.calls, again.stderr


def test_a_leaving_manager_marks_itself_when_it_drains(manager: Node) -> None:
    """The leader that follows it removes it once its machine is gone, as it does a worker."""
    terminating(manager, desired=3)
    manager.update("engine.json", node_ls=["true Leader", "false Reachable", "false Reachable"])
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert re.search(r"docker node update --availability drain --label-add swarmstack.leaving=true \S+",
                     manager.calls), manager.calls


def test_a_demoted_leader_leaves_once_raft_has_dropped_it_not_when_its_engine_hears(manager: Node) -> None:
    """Measured on real engines (docs/figures.md, 2026-12-02): the other managers listed the
    demoted leader without a manager status 0.3 s after its demotion (raft had dropped it, its
    manager shut its control socket), while its own engine read `ControlAvailable: true` for 5
    to 8 s more, and `docker node demote` often answered only then; the old leader waited for
    both, and the replacement's heal with it."""
    terminating(manager, desired=3)
    manager.update("engine.json", node_ls=["true Leader", "false Reachable", "false Reachable"], role_lag=8,
                   demote_unanswered=1)  # and the demotion's answer cut off: the manager stopped
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "demoted myself to worker" in result.stderr and "leaving by force" not in result.stderr
    assert manager.sleeps == [], manager.sleeps  # not one second's wait: it looked as the demotion timed out
    docker = [line for line in manager.calls.splitlines() if line.startswith("docker ")]
    first_look = docker.index("docker info --format {{.Swarm.ControlAvailable}} {{.Swarm.Error}}")
    assert docker[first_look - 1] == "docker node demote self-node", docker  # sent before it looks
    assert "docker swarm leave --force" in manager.calls  # what is left of its manager, stopped
    assert manager.read("engine.json")["state"] == "inactive"
    assert manager.read("cloud.json")["actions"] == [f"swarmstack-drain {ME} CONTINUE"]


def test_a_demoted_leader_does_not_wait_for_its_engine_to_leave(manager: Node) -> None:
    """Traced on real engines (docs/figures.md, 2026-12-02 afternoon): after raft had dropped
    the old leader, its `docker swarm leave` took up to 7.7 s (the daemon waits for its
    manager to stop), and the lifecycle action, the machine's end and the replacement with
    it. Raft no longer counts the node and the leader removes it once its machine is gone:
    one leave, bounded, not waited out, then the hook."""
    terminating(manager, desired=3)
    manager.update("engine.json", node_ls=["true Leader", "false Reachable", "false Reachable"], role_lag=2,
                   leave_unanswered=2)
    result = manager.run("watch")
    assert result.returncode == 0, result.stderr
    assert "demoted myself to worker" in result.stderr
    assert manager.calls.count("docker swarm leave") == 1, manager.calls
    assert "not waited for" in result.stderr
    assert manager.read("cloud.json")["actions"] == [f"swarmstack-drain {ME} CONTINUE"]


def test_a_demoted_manager_raft_cannot_drop_keeps_its_seat_until_the_drain_deadline(tmp_path: Path) -> None:
    """Raft keeps a demoted manager while dropping it would leave the others without a quorum
    (another manager already unreachable): leaving then would lose the quorum, so it waits,
    a member, until the drain's deadline, as before. (A drain deadline of 30 s: the same
    waits, a tenth as many, as 300 s.)"""
    manager = make_node(tmp_path, "manager", drain_wait_seconds=30)
    terminating(manager, desired=3)
    # and its engine's `docker info` hangs a while after the demotion: no answer is no news
    manager.update("engine.json", node_ls=["true Leader", "false Reachable", "false Unreachable"],
                   removal_blocked=True, demoted_info_unanswered=2)
    result = manager.run("watch", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "raft did not let me demote within 30s" in result.stderr
    assert sum(manager.sleeps) >= 29, manager.sleeps
    assert manager.read("cloud.json")["actions"] == [f"swarmstack-drain {ME} CONTINUE"]


def test_the_stand_ins_answer_only_their_own_tests(manager: Node) -> None:
    """The stand-ins' answers come from this process (tests/unit/nodefakes/server.py), which
    reads and writes the files a call names: a client without its token, or with a relative
    $FAKE_DIR, gets no answer."""
    docker = str(manager.dir / "bin" / "docker")
    env = {"PATH": "/usr/bin:/bin", "FAKE_PORT": str(fakes.port()), "FAKE_DIR": str(manager.dir)}
    answered = subprocess.run([docker, "version"], env={**env, "FAKE_TOKEN": fakes.TOKEN}, capture_output=True,
                              text=True, timeout=30)
    assert (answered.returncode, answered.stdout) == (0, "20.10.24\n")
    stranger = subprocess.run([docker, "version"], env={**env, "FAKE_TOKEN": "0" * 32}, capture_output=True,
                              text=True, timeout=30)
    assert stranger.returncode == 125 and stranger.stdout == ""
    relative = subprocess.run([docker, "version"], env={**env, "FAKE_TOKEN": fakes.TOKEN, "FAKE_DIR": "state"},
                              capture_output=True, text=True, timeout=30)
    assert relative.returncode == 64 and "must be absolute" in relative.stderr


def test_every_docker_info_outwaits_the_engines_own_raft_timeout() -> None:
    """Issue 13: on a manager `docker info` asks raft and, while raft elects, answers only
    after swarmkit's 20 s request timeout. `is_manager` gave it 10 s: mid-election a manager
    read as a worker, its watch skipped the heal, and the leader elected meanwhile removed the
    dead manager only a watch period later (3.3 s after winning, in a benchmark run's logs)."""
    settings = load_stack("prod-aws")
    script = files_of(render(params_for(settings.cluster, settings.region, "manager", "managers", GENERATION,
                                        KEY)))[NODE_SCRIPT]
    # Every one but the prune's own check (components/common/prune.py: PRUNE_COMMANDS),
    # which may wait as long as it takes, and demote_self's look, which no answer only
    # repeats (test_a_demoting_leaders_look_that_hangs_is_repeated_not_waited_out).
    lines = [line for line in script.splitlines() if "docker info" in line and "PRUNE_COMMANDS" not in line
             and "{{.Swarm.ControlAvailable}} {{.Swarm.Error}}" not in line]
    bounds = [int(n) for line in lines for n in re.findall(r"timeout (\d+) docker info", line)]
    assert len(bounds) == sum(line.count("docker info") for line in lines), lines
    assert bounds and min(bounds) > 20, bounds


def test_a_demoting_leaders_look_that_hangs_is_repeated_not_waited_out() -> None:
    """Traced on real engines (docs/figures.md, 2026-12-02 afternoon): the old leader's first
    look, sent 0.1 s after its demotion was committed, hung 8 s while its manager stopped and
    then answered neither sign; a look sent after it had begun to stop answers at once. No
    answer is never taken for demoted (test_a_demoted_manager_raft_cannot_drop_keeps_its_seat
    _until_the_drain_deadline): a short bound costs only a look more."""
    settings = load_stack("prod-aws")
    script = files_of(render(params_for(settings.cluster, settings.region, "manager", "managers", GENERATION,
                                        KEY)))[NODE_SCRIPT]
    body = script[script.index("\ndemote_self() {"):]
    body = body[:body.index("\n}\n")]
    bounds = [int(n) for n in re.findall(r"timeout (\d+) docker (?:info|node demote)", body)]
    assert len(bounds) == 2 and max(bounds) <= 3, body
