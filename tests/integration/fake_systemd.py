"""systemd's part in a `swarmstack-node converge` run on a harness node.

`converge` (what `swarmstack-converge.timer` starts every converge_interval_seconds)
talks to systemd about docker.service: `daemon-reload`, `is-active`, `restart`,
`enable`, `start`, `status`, `show`. The harness owns each node's dockerd
(`Node.start_engine`), so a stub `systemctl` first in the node's PATH answers the
queries itself and hands `start`, `stop` and `restart` of docker to the test process,
which stops the node's dockerd with SIGTERM (as systemd stops the unit) and starts it
again with `Node.start_engine`, exactly as the harness booted it (the TCP listener added
when daemon.json has `tlsverify`, as the unit's drop-in does). `show` goes to the host's
systemctl, as it did when the harness ran `configure` at boot, so the drop-in is judged
the same way on both runs. Other units (the swarmstack timers) are acknowledged and left
alone.

Every call is recorded (`calls`), and every start, stop and restart of the engine with
its beginning and end on the test's monotonic clock (`restarts`), so a test can say which engine restarted when.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STUB = r"""#!/bin/bash
# systemctl for one harness node (tests/integration/fake_systemd.py): docker.service is
# the node's dockerd, which the test process owns.
set -u
dir=$SWARMSTACK_TEST_SYSTEMD
printf '%s\n' "$*" >>"$dir/calls.log"
docker_unit() {
  local unit
  for unit in "$@"; do
    [[ $unit == docker.service || $unit == docker.socket || $unit == docker ]] && return 0
  done
  return 1
}
case ${1:-} in
  show)
    [[ -x /usr/bin/systemctl ]] && exec /usr/bin/systemctl "$@"
    exit 1
    ;;
  daemon-reload | enable | disable) exit 0 ;;
  is-active)
    pid=$(cat "$SWARMSTACK_TEST_DOCKER_PID" 2>/dev/null) && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
    exit
    ;;
  status) echo "docker.service: the harness's dockerd"; exit 0 ;;
  start | stop | restart)
    verb=$1
    shift
    docker_unit "$@" || exit 0
    request=$(mktemp "$dir/.req.XXXXXX")
    printf '%s\n' "$verb" >"$request"
    id=${request##*.req.}
    mv "$request" "$dir/$id.request"
    for _ in $(seq 1 1800); do
      if [[ -f $dir/$id.done ]]; then
        rc=$(cat "$dir/$id.done")
        rm -f "$dir/$id.done"
        exit "$rc"
      fi
      sleep 0.1
    done
    echo "systemctl $verb: the harness did not answer" >&2
    exit 1
    ;;
  *) echo "fake systemctl: unsupported: $*" >&2; exit 1 ;;
esac
"""


@dataclass
class Restart:
    node: str
    verb: str
    began: float
    ended: float
    ok: bool
    error: str = ""
    acted: bool = True
    """False for a `start` of an engine that was running (systemd does nothing then)."""


@dataclass
class FakeSystemd:
    """The stub `systemctl` of one node, and the test-side half that serves it."""

    node: Any
    """The harness node (tests/integration/harness.py: Node)."""
    restarts: list[Restart] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = Path(self.node.dir) / "systemd"
        (self.dir / "bin").mkdir(parents=True, exist_ok=True)
        stub = self.dir / "bin" / "systemctl"
        stub.write_text(STUB)
        stub.chmod(0o755)

    @property
    def calls(self) -> list[str]:
        log = self.dir / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def env(self) -> dict[str, str]:
        env = dict(self.node.env())
        env["PATH"] = f"{self.dir / 'bin'}:{env['PATH']}"
        env["SWARMSTACK_TEST_SYSTEMD"] = str(self.dir)
        env["SWARMSTACK_TEST_DOCKER_PID"] = str(Path(self.node.dir) / "docker.pid")
        return env

    def run(self, command: str = "converge", timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a swarmstack-node command as its systemd unit would, serving its systemctl calls."""
        out = self.dir / f"{command}.out"
        err = self.dir / f"{command}.err"
        with open(out, "w") as stdout, open(err, "w") as stderr:
            proc = subprocess.Popen(self.node.command(command), env=self.env(), stdout=stdout, stderr=stderr,
                                    text=True, start_new_session=True)
            deadline = time.monotonic() + timeout
            while proc.poll() is None:
                self._serve()
                if time.monotonic() > deadline:
                    from harness import kill_tree

                    kill_tree([proc.pid])
                    proc.wait(timeout=10)
                    raise AssertionError(f"{self.node.name}: swarmstack-node {command} ran over {timeout}s")
                time.sleep(0.05)
            self._serve()
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())
        with open(Path(self.node.dir) / "commands.log", "a") as log:
            log.write(f"--- {command} (fake systemd) exited {result.returncode}\n{result.stderr}")
        return result

    def _serve(self) -> None:
        for request in sorted(self.dir.glob("*.request")):
            verb = request.read_text().strip()
            began = time.monotonic()
            error = ""
            acted = verb != "start" or not self._engine_running()
            try:
                if verb in ("stop", "restart"):
                    self._stop_engine()
                if verb in ("start", "restart") and not self._engine_running():
                    self._start_engine()
            except Exception as err:  # the unit did not start: systemctl fails, the script says so
                error = f"{type(err).__name__}: {err}"
            ok = not error
            self.restarts.append(Restart(self.node.name, verb, began, time.monotonic(), ok, error, acted))
            done = request.with_suffix(".tmp")
            done.write_text("0\n" if ok else "1\n")
            done.replace(request.with_suffix(".done"))
            request.unlink()

    def _start_engine(self) -> None:
        """`Node.start_engine`; a `docker info` that times out while the engine starts (a
        manager asks raft first; two cores are shared) is waited out, as systemd waits
        for the unit's readiness, rather than taken for a failed start."""
        try:
            self.node.start_engine()
            return
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 120
        while self._engine_running():
            with contextlib.suppress(subprocess.TimeoutExpired):
                if self.node.docker("info", "--format", "{{.ID}}", check=False, timeout=30).strip():
                    return
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        raise RuntimeError(f"{self.node.name}: dockerd did not answer after its start")

    def _engine_running(self) -> bool:
        dockerd = self.node.dockerd
        return dockerd is not None and dockerd.poll() is None

    def _stop_engine(self) -> None:
        from harness import kill_tree

        dockerd = self.node.dockerd
        if dockerd is None or dockerd.poll() is not None:
            return
        dockerd.send_signal(signal.SIGTERM)
        try:
            dockerd.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_tree([dockerd.pid])
            with contextlib.suppress(subprocess.TimeoutExpired):
                dockerd.wait(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(Path(self.node.dir) / "docker.pid")
