"""A thousand nodes' cold start against the store's rate limits (issue 16), on a virtual clock.

    .venv/bin/python benchmarks/scale.py [--nodes N ...] [--managers 3] [--managers-after 120]

Every node is a real `bash` running the real node script, rendered for `prod-aws` (a manager or
a worker of the `general` pool), unchanged: its `bootstrap` command (`main bootstrap`:
identity, the wait loop with its backoff and jitter, election with the `init` marker and
read-back, token reads, throttling handling in `aws_call`, `join_swarm` with POST
/swarm/join, `joined`/`node_ready`, the leader's `member_duties` publishing the tokens and
the manager list), run again 15 s after a failed run as systemd runs converge again. Not
run: install/configure/start_engine (no engine here) and the timers after the join.

What is stood in (bash functions defined after the script, so they shadow commands; each
sends one line to this process and waits for its answer):

- `aws` and `aws_api` (the script's signed JSON calls, taken as the same CLI call): the
  store. SSM Parameter Store as AWS documents its default throughput:
  GetParameter and GetParameters share a token bucket of 40 transactions per second,
  PutParameter one of 3 per second (`--put-tps`); past them it answers
  `ThrottlingException: Rate exceeded` as the CLI prints it (exit 254). Auto Scaling's
  DescribeAutoScalingInstances / CompleteLifecycleAction answer and are counted, unthrottled.
  Each call takes 20 ms of virtual time.
- `docker`, `curl` (the engine API over its socket, IMDS): one fake engine per node
  (`swarm init`, `join-token`, `info`, `node inspect self`, POST /swarm/join checking the
  token and that the address is a manager's). No real dockerd: 1000 do not fit on 2 cores.
- `sleep`: blocks on the virtual clock; `date` reads it; `SECONDS` is set from it after each
  sleep; `timeout` runs its command without a bound; `port_open` asks whether the address
  is a manager's engine.

The clock is virtual and conservative: it moves to the next wake-up only when no process
of any node can run, so figures do not depend on this machine's speed (only the order of
calls arriving in the same virtual instant does; wake-ups within 0.1 s are delivered
together, at the latest of their times). A node runs several processes at once (a
manager's election beside its first read, the leader's token writes beside its manager
list): each process gets its answers on its own channel, and `Sim.all_waiting` reads
/proc to tell when every process waits on a stand-in (or on children that do). Were a
process ever to wait on something else, the clock moves after 2 s of real time without a
call, and the output counts it. Workers all start at t=0 (lockstep,
the worst case for bursts); the managers start `--managers-after` seconds later (their
engine install), so workers first wait with no swarm. Printed per N: store calls per
second (peak over 1-second bins, every call counted, throttled ones too; mean over the
cold start), throttled calls, when every node had its join token and when every node had
joined, counted from the first manager's `swarm init`. Goal: peak <= 40 tps, all joined
within 600 s at N = 1000.

Azure is derived, not simulated: the same logical calls mapped to Key Vault (tokens) and
Table storage (marker, manager list) against their documented limits, and the leader's
Resource Manager listings per minute. Say so in the output.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import re
import resource
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swarmstack.config.load import load_stack  # noqa: E402
from userdata import params_for, render  # noqa: E402
from userdata.params import worker_poll_for  # noqa: E402
from userdata.render import NODE_SCRIPT, files_of  # noqa: E402

GET_TPS = 40.0  # SSM GetParameter + GetParameters, standard throughput, per account and region
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EPOCH = 1_800_000_000
CALL_LATENCY = 0.020
ENGINE_LATENCY = 0.005
SEP = "\x1f"
QUANTUM = 0.1  # virtual seconds: wake-ups this close together are delivered at once
IDLE = 0.005  # real seconds without a call before the processes are looked at
STALL = 2.0  # real seconds without a call after which waiting nodes are taken as waiting

STANDINS = r'''
# --- benchmarks/scale.py stand-ins: everything below shadows a command ---
exec 3>"$SIM_REQ"
# Each process of a node (the main shell, a background job, a `$(...)`) gets its answers on
# its own channel, made at its first call: processes of one node wait side by side.
sim_raw() {
  local q
  if [[ ${SIM_PID:-} != "$BASHPID" ]]; then
    SIM_PID=$BASHPID
    [[ -p $SIM_DIR/r$BASHPID ]] || mkfifo "$SIM_DIR/r$BASHPID"
    exec 4<>"$SIM_DIR/r$BASHPID"
  fi
  printf -v q '%q ' "$@"
  printf '%s %s %s\n' "$SIM_ID" "$BASHPID" "$q" >&3
  IFS=$'\x1f' read -r SIM_RC SIM_OUT SIM_ERR <&4
}
sim() {
  local rc out err
  sim_raw "$@"
  rc=$SIM_RC out=$SIM_OUT err=$SIM_ERR
  [[ -z $out ]] || printf '%b\n' "$out"
  [[ -z $err ]] || printf '%b\n' "$err" >&2
  return "$rc"
}
aws() { sim aws "$@"; }
aws_api() { sim aws_api "$@"; }
docker() { sim docker "$@"; }
curl() { sim curl "$@"; }
timeout() { shift; "$@"; }
port_open() { sim port "$1" "$2"; }
sleep() { sim_raw sleep "$1"; SECONDS=${SIM_OUT%.*}; }
date() {
  local now
  now=$(<"$SIM_NOW")
  if [[ $* == *%s* ]]; then echo $((SIM_EPOCH + ${now%.*})); else echo "t+${now%.*}s"; fi
}
trap 'printf "%s %s done %s\n" "$SIM_ID" "$BASHPID" "$?" >&3' EXIT
sleep "$SIM_START"
until (main bootstrap); do sleep 15; done
'''


@dataclass
class Node:
    id: int
    role: str
    instance: str
    ip: str
    proc: subprocess.Popen | None = None
    state: str = "inactive"
    manager: bool = False
    leader: bool = False
    token_at: float | None = None
    joined_at: float | None = None
    done: bool = False


@dataclass
class Bucket:
    rate: float
    tokens: float
    last: float = 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Store:
    get: Bucket
    put: Bucket
    params: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[float, str, bool]] = field(default_factory=list)  # (time, operation, throttled)


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def options(args: list[str], name: str) -> list[str]:
    out = []
    if name in args:
        for value in args[args.index(name) + 1:]:
            if value.startswith("--"):
                break
            out.append(value)
    return out


class Sim:
    def __init__(self, n: int, managers: int, managers_after: float, put_tps: float, work: Path) -> None:
        self.now = 0.0
        self.work = work
        self.store = Store(get=Bucket(GET_TPS, GET_TPS), put=Bucket(put_tps, put_tps))
        self.tokens = {"manager": "SWMTKN-1-" + "m" * 50, "worker": "SWMTKN-1-" + "w" * 50}
        self.nodes = [Node(i, "manager" if i < managers else "worker", f"i-{i:017x}",
                           f"10.0.1.{10 + i}" if i < managers else f"10.{1 + i // 250}.{i % 250}.10")
                      for i in range(n)]
        self.by_ip = {node.ip: node for node in self.nodes}
        self.managers_after = managers_after
        self.events: list[tuple[float, int, int, int, str | None]] = []  # (time, seq, node, pid, reply)
        self.asking: set[int] = set()
        """The processes that called a stand-in and wait for its answer."""
        self.rfd = -1
        """The read end of the calls' channel."""
        self.stalls = 0
        """Times the clock moved after STALL real seconds without a call, not on a look."""
        self.seq = 0
        self.init_at: float | None = None
        self.other: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()

    # --- the stand-ins' answers ---

    def reply_at(self, node: Node, caller: int, delay: float, rc: int, out: str = "", err: str = "") -> None:
        """The answer to `caller` (the process of `node` that called) `delay` virtual seconds from now."""
        def esc(s: str) -> str:
            return s.replace("\\", "\\\\").replace("\n", "\\n").replace(SEP, " ")
        heapq.heappush(self.events, (self.now + delay, self.seq, node.id, caller,
                                     f"{rc}{SEP}{esc(out)}{SEP}{esc(err)}\n"))
        self.seq += 1

    def handle(self, node: Node, caller: int, argv: list[str]) -> None:
        kind, args = argv[0], argv[1:]
        if kind == "sleep":
            seconds = float(args[0])
            heapq.heappush(self.events, (self.now + seconds, self.seq, node.id, caller, None))
            self.seq += 1
        elif kind == "aws":
            self.reply_at(node, caller, CALL_LATENCY, *self.aws(node, args))
        elif kind == "aws_api":
            self.reply_at(node, caller, CALL_LATENCY, *self.aws_api(node, args))
        elif kind == "docker":
            self.reply_at(node, caller, ENGINE_LATENCY, *self.docker(node, args))
        elif kind == "curl":
            self.reply_at(node, caller, ENGINE_LATENCY, *self.curl(node, args))
        elif kind == "port":
            peer = self.by_ip.get(args[0])
            self.reply_at(node, caller, ENGINE_LATENCY, 0 if peer and peer.manager and peer.state == "active" else 1)
        else:
            self.unknown[kind] += 1
            self.reply_at(node, caller, 0, 1, "", f"unknown stand-in {kind}")

    def aws(self, node: Node, raw: list[str]) -> tuple[int, str, str]:
        args, rest = [], list(raw)
        while rest:
            if rest[0] in ("--endpoint-url", "--cli-connect-timeout", "--cli-read-timeout"):
                rest = rest[2:]
                continue
            args.append(rest.pop(0))
        service, operation = args[0], args[1]
        if service != "ssm":
            self.other[f"{service} {operation}"] += 1
            if operation == "describe-auto-scaling-instances":
                return 0, "swarmstack-prod-" + ("managers" if node.role == "manager" else "general"), ""
            if operation == "complete-lifecycle-action":
                return 0, "", ""
            self.unknown[f"aws {service} {operation}"] += 1
            return 254, "", f"An error occurred (UnknownOperation) when calling {operation}"
        bucket = self.store.put if operation == "put-parameter" else self.store.get
        ok = bucket.take(self.now)
        self.store.calls.append((self.now, operation, not ok))
        name_op = "".join(w.capitalize() for w in operation.split("-"))
        if not ok:
            return 254, "", (f"\nAn error occurred (ThrottlingException) when calling the {name_op} operation: "
                             "Rate exceeded")
        params = self.store.params
        if operation == "get-parameter":
            name = option(args, "--name")
            if name not in params:
                return 254, "", f"\nAn error occurred (ParameterNotFound) when calling the {name_op} operation: "
            return 0, params[name], ""
        if operation == "get-parameters":
            names = options(args, "--names")
            found = [(n, params[n]) for n in names if n in params]
            if option(args, "--query") == "Parameters[].[Name,Value]":
                if node.role == "worker" and any("/tokens/" in n for n, _ in found) and node.token_at is None:
                    node.token_at = self.now
                return 0, "\n".join(f"{n}\t{v}" for n, v in found), ""
            return 0, json.dumps({"Parameters": [{"Name": n, "Value": v} for n, v in found]}), ""
        if operation == "put-parameter":
            name, value = option(args, "--name") or "", option(args, "--value") or ""
            if value.startswith("file://"):
                value = Path(value[len("file://"):]).read_text()
            if name in params and "--overwrite" not in args:
                return 254, "", f"\nAn error occurred (ParameterAlreadyExists) when calling the {name_op} operation: "
            params[name] = value
            return 0, "1", ""
        self.unknown[f"aws ssm {operation}"] += 1
        return 254, "", "unknown"

    def aws_api(self, node: Node, args: list[str]) -> tuple[int, str, str]:
        """The script's own signed JSON calls (`aws_api SERVICE OPERATION FORM REQUEST
        [VALUE-FILE]`), answered as the same call through the CLI, in the answer's form."""
        service, operation, form, request, *value = args
        if form not in ("value", "rows", "-"):  # a directory (tls_fetch): no Docker API in this benchmark
            self.unknown[f"aws_api {service} {operation} {form}"] += 1
            return 1, "", f"the stand-in has no form {form}"
        body = json.loads(request)
        cli = [service, re.sub(r"(?<!^)([A-Z])", r"-\1", operation).lower()]
        if "Name" in body:
            cli += ["--name", body["Name"]]
        cli += ["--names", *body["Names"]] if "Names" in body else []
        cli += ["--overwrite"] if body.get("Overwrite") else []
        cli += ["--value", f"file://{value[0]}"] if value else []
        cli += ["--query", "Parameters[].[Name,Value]"] if form == "rows" else []
        rc, out, err = self.aws(node, cli)
        return rc, out if form != "-" else "", err

    def docker(self, node: Node, args: list[str]) -> tuple[int, str, str]:
        fmt = option(args, "--format") or ""
        if args[0] == "version":
            return 0, "24.0.7", ""
        if args[0] == "info":
            if "LocalNodeState" in fmt:
                return 0, node.state, ""
            if "ControlAvailable" in fmt:
                return 0, "true" if node.manager and node.state == "active" else "false", ""
            if "NodeID" in fmt:
                return 0, "" if node.state == "inactive" else f"node{node.id}", ""
        if args[:2] == ["swarm", "init"]:
            if node.state == "active":
                return 1, "", "This node is already part of a swarm."
            node.state, node.manager, node.leader = "active", True, True
            node.joined_at = node.token_at = self.now
            self.init_at = self.now if self.init_at is None else self.init_at
            return 0, "Swarm initialized", ""
        if args[:2] == ["swarm", "join-token"]:
            return 0, self.tokens[args[-1]], ""
        if args[:2] == ["swarm", "leave"]:
            node.state, node.manager, node.leader = "inactive", False, False
            return 0, "", ""
        if args[:2] == ["node", "inspect"] and "Leader" in fmt:
            return 0, "true" if node.leader else "false", ""
        if args[:2] == ["node", "inspect"] and "Reachability" in fmt:
            return 0, "reachable" if node.manager else "", ""
        self.unknown["docker " + " ".join(args[:2])] += 1
        return 1, "", "unknown docker command"

    def curl(self, node: Node, args: list[str]) -> tuple[int, str, str]:
        url = args[-1]
        if "--unix-socket" in args:
            body = json.loads(Path((option(args, "--data-binary") or "@")[1:]).read_text())
            peer = self.by_ip.get(body["RemoteAddrs"][0].split(":")[0])
            role = next((r for r, t in self.tokens.items() if t == body["JoinToken"]), None)
            ok = peer is not None and peer.manager and peer.state == "active" and role == node.role
            Path(option(args, "-o") or "/dev/null").write_text("{}" if ok else '{"message": "refused"}')
            if ok:
                node.state, node.manager = "active", role == "manager"
                node.joined_at = self.now
                if node.token_at is None:
                    node.token_at = self.now
            return 0, "200" if ok else "500", ""
        answers = {"api/token": "imds-token", "meta-data/instance-id": node.instance,
                   "meta-data/local-ipv4": node.ip, "meta-data/placement/availability-zone": "eu-west-1a",
                   "meta-data/instance-type": "m6i.large"}
        for suffix, value in answers.items():
            if url.endswith(suffix):
                return 0, value, ""
        return 22, "", "404"

    # --- the clock ---

    def run(self, script: Path, limit: float) -> float:
        req = self.work / "req"
        os.mkfifo(req)
        rfd = self.rfd = os.open(req, os.O_RDONLY | os.O_NONBLOCK)
        keep = os.open(req, os.O_WRONLY)  # never EOF while nodes come and go
        (self.work / "now").write_text("0")
        started = time.monotonic()
        for node in self.nodes:
            d = self.work / f"n{node.id}"
            (d / "run").mkdir(parents=True)
            start = self.managers_after if node.role == "manager" else 0.0
            env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "SIM_ID": str(node.id), "SIM_REQ": str(req),
                   "SIM_DIR": str(d), "SIM_NOW": str(self.work / "now"), "SIM_EPOCH": str(EPOCH),
                   "SIM_START": f"{start + node.id * 1e-4:.4f}", "SWARMSTACK_STATE_DIR": str(d / "state"),
                   "SWARMSTACK_RUN_DIR": str(d / "run"), "SWARMSTACK_LOG_FILE": str(d / "bootstrap.log"),
                   "SWARMSTACK_DOCKER_SOCKET": str(d / "docker.sock")}
            # Its own process group: the node's processes (each holds its answer channel open
            # both ways, so none ever sees an end of file) end with it, whatever happens.
            node.proc = subprocess.Popen(["bash", str(script.with_name(f"{node.role}.sh"))], env=env,
                                         stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "w"),  # noqa: SIM115
                                         start_new_session=True)
        buf = b""
        last_call = time.monotonic()
        try:
            while True:
                # Take every call until no process of any node can run: each waits on a
                # stand-in's answer (or on its children, which do). Only then may the clock move.
                while True:
                    ready, _, _ = select.select([rfd], [], [], IDLE)
                    if not ready:
                        if self.all_waiting():
                            break
                        if time.monotonic() - last_call > STALL:
                            # A process that waits on something no stand-in answers (a pipe
                            # from a sibling): counted, and the clock moves.
                            self.stalls += 1
                            break
                        continue
                    last_call = time.monotonic()
                    buf += os.read(rfd, 1 << 16)
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        self.other["(requests)"] += 1
                        ident, who, rest = line.decode().split(" ", 2)
                        node = self.nodes[int(ident)]
                        if rest.startswith("done "):
                            node.done = True
                            continue
                        self.asking.add(int(who))
                        self.handle(node, int(who), shlex.split(rest))
                if not self.events or all(n.done or n.joined_at is not None for n in self.nodes) or self.now > limit:
                    break
                # Every wake-up within QUANTUM of the next is delivered together (so that nodes
                # run in parallel here), at the latest of their times: no node's clock goes back.
                t = self.events[0][0]
                batch = []
                while self.events and self.events[0][0] <= t + QUANTUM:
                    batch.append(heapq.heappop(self.events))
                t = self.now = max(self.now, batch[-1][0])
                (self.work / "now.new").write_text(f"{t:.3f}")
                os.replace(self.work / "now.new", self.work / "now")
                for _, _, i, caller, reply in batch:
                    if not self.nodes[i].done:
                        self.answer(i, caller, reply if reply is not None else f"0{SEP}{t:.3f}{SEP}\n")
                last_call = time.monotonic()  # the answered processes run from now
        finally:
            for node in self.nodes:
                if node.proc is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(node.proc.pid, signal.SIGKILL)
                    node.proc.wait()
            os.close(rfd)
            os.close(keep)
        return time.monotonic() - started

    def answer(self, i: int, pid: int, reply: str) -> None:
        """The answer on the calling process's own channel (it holds it open while it lives)."""
        self.asking.discard(pid)
        try:
            fd = os.open(self.work / f"n{i}" / f"r{pid}", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # the process is gone (its bash died: a fork refused on a loaded machine)
            self.other["(answers to processes gone)"] += 1
            return
        try:
            os.write(fd, reply.encode())
        finally:
            os.close(fd)

    def all_waiting(self) -> bool:
        """Whether no process of any running node can run: each one waits on a stand-in's
        answer (it called and is not answered yet), or has ended (Z), or sleeps (S) with
        children, all of which wait so. Anything else runs (a command such as `mktemp`, a
        fork under way), whatever its state reads.
        Two looks in a row must agree, with no call between them: a child forked while /proc
        was being read is seen by the second."""
        for look in range(2):
            if look:
                time.sleep(IDLE)
                ready, _, _ = select.select([self.rfd], [], [], 0)
                if ready:
                    return False
            if not self._one_look():
                return False
        return True

    def _one_look(self) -> bool:
        state: dict[int, str] = {}
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    text = f.read()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces and ')'
            pid = int(entry.name)
            state[pid] = fields[0]
            children.setdefault(int(fields[1]), []).append(pid)
        self.other["(looks at the processes)"] += 1

        def waits(pid: int) -> bool:
            if pid in self.asking or state.get(pid, "Z") in "ZX":
                return True
            below = children.get(pid, [])
            return state[pid] == "S" and bool(below) and all(waits(child) for child in below)

        # A node whose bash ended (Z) waits for nothing more: its last line said "done", or
        # it died (a fork refused on a loaded machine), and the figures count it not joined.
        return all(node.done or node.proc is None or waits(node.proc.pid) for node in self.nodes)


def render_scripts(work: Path, workers: int) -> Path:
    """The prod-aws scripts as a cluster of `workers` workers gets them: its waiting workers'
    poll period is the one the program renders for that size (`worker_poll_for`)."""
    settings = load_stack("prod-aws", root=ROOT)
    for role, pool in (("manager", "managers"), ("worker", "general")):
        params = replace(params_for(settings.cluster, settings.region, role, pool, "0a1b2c3d", KEY),
                         docker_api=False, log_groups=None, worker_poll_seconds=worker_poll_for(workers))
        script = files_of(render(params))[NODE_SCRIPT]
        assert script.rstrip().endswith('main "$@"'), "the script no longer ends with main"
        (work / f"{role}.sh").write_text(script.rstrip()[: -len('main "$@"')] + STANDINS)
    return work / "worker.sh"


def per_second(times: list[float]) -> Counter:
    return Counter(int(t) for t in times)


def report(n: int, sim: Sim, real: float) -> dict:
    calls = sim.store.calls
    gets = [t for t, op, _ in calls if op != "put-parameter"]
    puts = [t for t, op, _ in calls if op == "put-parameter"]
    throttled = sum(1 for _, _, th in calls if th)
    init = sim.init_at
    joined = [node.joined_at for node in sim.nodes if node.joined_at is not None]
    tokens = [node.token_at for node in sim.nodes if node.token_at is not None]
    everyone = len(sim.nodes)
    all_joined = None if init is None or len(joined) < everyone else max(joined) - init
    all_tokens = None if init is None or len(tokens) < everyone else max(tokens) - init
    end = max(joined) if all_joined is not None else sim.now
    span = max(1.0, end - min(t for t, _, _ in calls)) if calls else 1.0
    peak = max(per_second(gets + puts).values(), default=0)
    stats = {"nodes": n, "peak": peak, "peak_get": max(per_second(gets).values(), default=0),
             "peak_put": max(per_second(puts).values(), default=0), "mean": len(calls) / span,
             "calls": len(calls), "throttled": throttled, "all_tokens": all_tokens, "all_joined": all_joined,
             "virtual": sim.now, "real": real, "other": dict(sim.other), "unknown": dict(sim.unknown),
             "missing": everyone - len(joined), "stalls": sim.stalls}
    def fmt(v: float | None) -> str:
        return "never" if v is None else f"{v:.0f}"
    print(f"nodes {n}: SSM peak {peak} tps (limit {GET_TPS:.0f} Get + {sim.store.put.rate:.0f} Put; "
          f"GetParameter(s) {stats['peak_get']}, PutParameter {stats['peak_put']}), mean {stats['mean']:.1f} tps, "
          f"throttled {throttled} of {len(calls)} calls; every node had its token in {fmt(all_tokens)} s, "
          f"all joined in {fmt(all_joined)} s after the first swarm init (goal 600 s); "
          f"{stats['missing']} not joined; virtual {sim.now:.0f} s in {real:.0f} s real; "
          f"the clock moved {stats['stalls']} times after {STALL:g} s without a call", flush=True)
    if sim.unknown:
        print(f"  stand-ins asked for what they do not know: {dict(sim.unknown)}", flush=True)
    return stats


def azure_lines(n: int, sim: Sim) -> None:
    """The same logical calls on Azure's stores (derived, not simulated): a worker's token read
    is one Key Vault GET and one Table GET; every other store call is one Table operation."""
    reads = [t for t, op, _ in sim.store.calls if op == "get-parameters"]
    other = [t for t, op, _ in sim.store.calls if op != "get-parameters"]
    kv10 = max(Counter(int(t // 10) for t in reads).values(), default=0)
    table = max((per_second(reads) + per_second(other)).values(), default=0)
    # The leader's clean-up while nodes are unlabelled: one listing a minute (instance_table):
    # the scale sets, then per Uniform set its machines and interfaces (pages of up to 1000).
    pools = 3
    arm_per_min = 1 + pools * 2 * max(1, -(-n // 1000))
    print(f"azure {n} (derived from the same calls, not simulated): Key Vault GET peak {kv10} per 10 s "
          f"(limit 4000 per vault); Table peak {table} per s (limit 2000 entities/s per partition); "
          f"ARM reads by the leader {arm_per_min} per minute while nodes join (bucket 250, refill 25/s "
          f"per subscription, region and principal)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--managers", type=int, default=3)
    parser.add_argument("--managers-after", type=float, default=120.0,
                        help="virtual seconds between the workers' and the managers' start")
    parser.add_argument("--put-tps", type=float, default=3.0)
    parser.add_argument("--limit", type=float, default=1800.0, help="virtual seconds before giving up")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not shutil.which("bash"):
        print("needs bash", file=sys.stderr)
        return 2
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # On SIGTERM as on Ctrl-C: the finally blocks stop every node and remove the work directory.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(__doc__.split("\n\n")[0].strip(), flush=True)
    results = []
    ok = True
    for n in args.nodes:
        shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
        with tempfile.TemporaryDirectory(prefix=f"scale{n}-", dir=shm) as tmp:
            work = Path(tmp)
            script = render_scripts(work, n - args.managers)
            sim = Sim(n, args.managers, args.managers_after, args.put_tps, work)
            real = sim.run(script, args.limit)
            stats = report(n, sim, real)
            azure_lines(n, sim)
            results.append(stats)
            ok = ok and stats["peak"] <= GET_TPS and stats["all_joined"] is not None and stats["all_joined"] <= 600
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print("goal met" if ok else "goal NOT met", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
