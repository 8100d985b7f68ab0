"""Every command line on the machine while a cluster forms, to show no secret is on one.

`ArgvWatch` records the distinct command lines of every process on this machine (the
harness's nodes run as host processes; real-boot nodes run under systemd-nspawn, whose
processes the host's /proc shows too) in two ways at once:

- a sweep of every `/proc/<pid>/cmdline`, every `interval` seconds (20 ms): catches every
  process that lives longer than a sweep;
- the kernel's process events connector (netlink `NETLINK_CONNECTOR`, `PROC_EVENT_EXEC`):
  each exec is announced as it happens and its command line read at once, which catches
  short-lived ones too (an `env true` of a millisecond, on a machine under load 15).
  Needs root; when the kernel refuses, the sweep alone is used and `exec_events` stays 0.

The recorder runs in a process of its own (this file run as a script; the exec thread
at a real-time priority, the sweep at the normal one), so that the test process's
threads never delay it; `ArgvWatch` starts it and reads what it wrote. The secrets are
known only afterwards (the tokens the swarm drew, the bearer tokens the fake IMDS
issued), so everything is recorded and `leaks(secrets)` is asked at the end.
`seen(*needles)` says which recorded command lines hold every needle: a test uses it to
show that the watch did see the commands that handle the tokens (`aws ssm put-parameter
... tokens/manager`, the `curl` of `POST /swarm/join`), so that a clean result means
something.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_EXEC = 0x00000002
NLMSG_DONE = 3
_EVENT_OFFSET = 16 + 20  # struct nlmsghdr, struct cn_msg
_EXEC_PID_OFFSET = _EVENT_OFFSET + 16  # what, cpu, timestamp_ns


def _read_cmdline(pid: str | int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:  # gone, or a kernel thread
        return None


class Recorder:
    """Records every distinct command line on the machine until `close()` (in this process)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.lines: dict[bytes, float] = {}
        """Distinct command lines (NUL-separated, as in /proc) and when each was first seen."""
        self.sweeps = 0
        self.exec_events = 0
        self.exec_read = 0
        self.exec_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._own = os.getpid()
        self._sock: socket.socket | None = None
        self._threads = [threading.Thread(target=self._sweep, name="argv-sweep", daemon=True)]
        try:
            self._sock = self._subscribe()
            self._threads.append(threading.Thread(target=self._events, name="argv-exec", daemon=True))
        except OSError as err:
            self.exec_error = str(err)
        for thread in self._threads:
            thread.start()

    # --- recording ---

    def _record(self, line: bytes | None) -> bool:
        if not line:
            return False
        with self._lock:
            self.lines.setdefault(line, time.monotonic())
        return True

    def _sweep(self) -> None:
        while not self._stop.is_set():
            for entry in os.listdir("/proc"):
                if entry.isdigit() and int(entry) != self._own:
                    self._record(_read_cmdline(entry))
            self.sweeps += 1
            self._stop.wait(self.interval)

    @staticmethod
    def _subscribe() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            sock.bind((0, CN_IDX_PROC))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.send(Recorder._control(PROC_CN_MCAST_LISTEN))
            sock.settimeout(0.2)
        except OSError:
            sock.close()
            raise
        return sock

    @staticmethod
    def _control(op: int) -> bytes:
        body = struct.pack("=I", op)
        message = struct.pack("=IIIIHH", CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(body), 0) + body
        return struct.pack("=IHHII", 16 + len(message), NLMSG_DONE, 0, 0, 0) + message

    def _events(self) -> None:
        assert self._sock is not None
        # A short-lived process is gone within a millisecond or two of its exec: this thread
        # (blocked in recv otherwise) runs as soon as the event comes, whatever the load.
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as err:  # ENOBUFS when events come faster than read: the sweep still runs
                self.exec_error = str(err)
                continue
            if len(data) < _EXEC_PID_OFFSET + 4 or struct.unpack_from("=I", data, _EVENT_OFFSET)[0] != PROC_EVENT_EXEC:
                continue
            self.exec_events += 1
            pid = struct.unpack_from("=I", data, _EXEC_PID_OFFSET)[0]
            if self._record(_read_cmdline(pid)):
                self.exec_read += 1

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.send(self._control(PROC_CN_MCAST_IGNORE))
            self._sock.close()
            self._sock = None

    def stats(self) -> dict[str, object]:
        return {"lines": len(self.lines), "sweeps": self.sweeps, "exec_events": self.exec_events,
                "exec_read": self.exec_read, "exec_error": self.exec_error}


def _record_to(path: Path, interval: float) -> None:
    """The recorder process: every new command line appended to `path` (length-prefixed),
    the counts to `path`.stats; SIGTERM ends it."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    recorder = Recorder(interval)
    written = 0
    with open(path, "ab") as out:
        while True:
            stopping = stop.wait(0.2)
            with recorder._lock:
                lines = list(recorder.lines)[written:]
            for line in lines:
                out.write(struct.pack("=I", len(line)) + line)
            out.flush()
            written += len(lines)
            stats = Path(f"{path}.stats.new")
            stats.write_text(json.dumps(recorder.stats()))
            stats.replace(f"{path}.stats")
            if stopping:
                break
    recorder.close()


class ArgvWatch:
    """Records every distinct command line on the machine from now until `close()`, in a
    recorder process of its own; ask it with `seen` and `leaks`."""

    def __init__(self, interval: float = 0.02) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="argv-"))
        atexit.register(shutil.rmtree, self._dir, True)
        self._file = self._dir / "lines"
        self._file.touch()
        with open(self._dir / "stderr", "wb") as errors:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, __file__, str(self._file), str(interval)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=errors)
        deadline = time.monotonic() + 10
        while not self._file.stat().st_size:  # the recorder's first sweep sees at least itself
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the argv recorder did not start: {(self._dir / 'stderr').read_text()}")
            time.sleep(0.05)

    def __enter__(self) -> ArgvWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop recording (what was recorded stays readable)."""
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    # --- asking ---

    def snapshot(self) -> list[str]:
        data = self._file.read_bytes()
        lines, at = [], 0
        while at + 4 <= len(data):
            (size,) = struct.unpack_from("=I", data, at)
            if at + 4 + size > len(data):
                break  # a record still being written
            lines.append(data[at + 4:at + 4 + size])
            at += 4 + size
        return [line.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace") for line in lines]

    def seen(self, *needles: str) -> list[str]:
        """The recorded command lines holding every one of `needles`."""
        return [line for line in self.snapshot() if all(n in line for n in needles)]

    def leaks(self, secrets: Iterable[str]) -> dict[str, list[str]]:
        """For each secret found on a recorded command line, those command lines."""
        lines = self.snapshot()
        found: dict[str, list[str]] = {}
        for secret in {s.strip() for s in secrets if s and s.strip()}:
            hits = [line for line in lines if secret in line]
            if hits:
                found[secret] = hits
        return found

    def summary(self) -> str:
        """The recorder's counts so far."""
        try:
            stats = json.loads(Path(f"{self._file}.stats").read_text())
        except (OSError, ValueError):
            return f"{len(self.snapshot())} distinct command lines"
        exec_part = (f"{stats['exec_events']} exec events ({stats['exec_read']} read in time)"
                     if stats["exec_events"] else f"no exec events ({stats['exec_error']})")
        return f"{stats['lines']} distinct command lines, {stats['sweeps']} sweeps, {exec_part}"


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret cut to its first 12 characters, for assertion messages."""
    for secret in secrets:
        if secret and len(secret) > 12:
            text = text.replace(secret, secret[:12] + "…")
    return text


if __name__ == "__main__":
    _record_to(Path(sys.argv[1]), float(sys.argv[2]))
