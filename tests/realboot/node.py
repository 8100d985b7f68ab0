"""One booted node: a network namespace, an overlay over the base root, a NoCloud
seed, and `systemd-nspawn -b` running real systemd (PID 1) and real cloud-init.

The host has no systemd of its own, so the launching shell first moves itself into
its own cgroups (`unified/<name>` and `systemd/<name>`), then execs nspawn with
`--keep-unit --register=no`. Every process of a node lives in those cgroups, which is
how a crash (`power_off`) and `close` find and kill them: by PID, never by name.

The node's disk is its overlay's upper directory plus a host directory bound at
/var/lib/docker (overlay2 cannot sit on an overlay root). Both survive `reboot`,
`stop` and `power_off`: starting again is booting the same disk with the same
instance-id, so cloud-init does not run the user data a second time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

NSPAWN_ENV = {
    # cgroup v2 inside; v1 controllers would be read-only (so no memory/cpu limits reach containers).
    "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1",
    # dockerd writes /proc/sys/net.
    "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network",
    # `docker run` needs the keyring syscalls.
    "SYSTEMD_SECCOMP": "0",
}
CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
INNER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class NodeError(RuntimeError):
    pass


class BootedNode:
    """A machine: its disk (overlay upper + docker dir), its namespace, and nspawn when running."""

    def __init__(self, name: str, base: Path, workdir: Path, netns: str, hostname: str | None = None) -> None:
        self.name = name
        self.base = base
        self.dir = workdir
        self.netns = netns
        self.hostname = hostname or name
        self.upper = workdir / "upper"
        self.work = workdir / "work"
        self.merged = workdir / "merged"
        self.docker_dir = workdir / "docker"
        self.console = workdir / "console.log"
        self.cgroup = f"realboot-{workdir.parent.name}-{name}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.boots = 0
        for path in (self.upper, self.work, self.merged, self.docker_dir):
            path.mkdir(parents=True, exist_ok=True)
        self._mount()

    # --- the disk ---

    def _mount(self) -> None:
        if os.path.ismount(self.merged):
            return
        options = f"lowerdir={self.base},upperdir={self.upper},workdir={self.work}"
        result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(self.merged)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise NodeError(f"mounting the overlay of {self.name}: {result.stderr.strip()}")

    def seed(self, instance_id: str, user_data: bytes, hostname: str | None = None) -> None:
        """The NoCloud seed: meta-data, and user data exactly as given (gzip allowed)."""
        seed = self.merged / "var/lib/cloud/seed/nocloud"
        seed.mkdir(parents=True, exist_ok=True)
        (seed / "meta-data").write_text(f"instance-id: {instance_id}\nlocal-hostname: {hostname or self.hostname}\n")
        (seed / "user-data").write_bytes(user_data)

    def chroot(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Change the disk before (or between) boots: run a command chrooted into it."""
        if self.running:
            raise NodeError(f"{self.name} is running; change its disk only while it is off")
        result = subprocess.run(["chroot", str(self.merged), *args], capture_output=True, text=True, timeout=timeout,
                                env={"PATH": INNER_PATH, "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"})
        if result.returncode != 0:
            raise NodeError(f"chroot {self.name} {' '.join(args)}: exit {result.returncode}: {result.stderr.strip()}")
        return result

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        """Write a file on the node's disk (while it is off, or a plain file while it runs)."""
        target = self.merged / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    # --- power ---

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Power on: nspawn boots the disk in the node's namespace."""
        if self.running:
            raise NodeError(f"{self.name} is already running")
        self._mount()
        for root in CGROUP_ROOTS:
            (root / self.cgroup).mkdir(exist_ok=True)
        nspawn = shutil.which("systemd-nspawn")
        if nspawn is None:
            raise NodeError("systemd-nspawn is missing (apt-get install systemd-container)")
        script = " ".join(f"echo $$ > {root / self.cgroup / 'cgroup.procs'};" for root in CGROUP_ROOTS)
        args = [nspawn, "-b", "-D", str(self.merged), "-M", self.hostname, "--register=no", "--keep-unit",
                f"--network-namespace-path=/run/netns/{self.netns}", "--console=read-only", "--capability=all",
                f"--bind={self.docker_dir}:/var/lib/docker"]
        env = {"PATH": os.environ.get("PATH", INNER_PATH), **NSPAWN_ENV}
        self.boots += 1
        with open(self.console, "ab") as out:
            out.write(f"\n===== boot {self.boots} at {time.strftime('%H:%M:%S')} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(["sh", "-c", script + ' exec "$@"', "sh", *args], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)

    def init_pid(self, timeout: float = 30) -> int:
        """The PID (on the host) of the node's PID 1."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise NodeError(f"{self.name}: nspawn exited ({self.proc.returncode if self.proc else None}):\n"
                                + self.console_tail())
            for pid in self.pids():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
                if len(nspid) >= 2 and nspid[-1] == "1":
                    return pid
            if time.monotonic() > deadline:
                raise NodeError(f"{self.name}: no PID 1 after {timeout}s:\n{self.console_tail()}")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        """Every process of this node (nspawn and all inside), from its cgroups."""
        found: set[int] = set()
        for root in CGROUP_ROOTS:
            base = root / self.cgroup
            if not base.exists():
                continue
            # os.walk, not rglob: cgroups come and go while we look (rglob raises on a vanished one).
            for directory, _dirs, files in os.walk(base, onerror=lambda _err: None):
                if "cgroup.procs" in files:
                    with contextlib.suppress(OSError, ValueError):
                        found.update(int(line) for line in Path(directory, "cgroup.procs").read_text().split())
        return sorted(found)

    def wait_booted(self, timeout: float = 300) -> str:
        """Until cloud-init is done and systemd has finished starting up; systemd's state
        (`running`, or `degraded` with the failed units)."""
        deadline = time.monotonic() + timeout
        self.init_pid()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NodeError(f"{self.name} did not finish booting in {timeout}s:\n{self.console_tail()}")
            try:
                result = self.exec("cloud-init", "status", "--wait", timeout=left, check=False)
                if result.returncode in (0, 1, 2) and "status:" in result.stdout:
                    break
            except subprocess.TimeoutExpired:
                continue
            time.sleep(1)
        # `is-system-running --wait` would wait for every start job, and a oneshot that waits
        # for the swarm (by design) keeps one running: poll, bounded, and say what runs.
        settle = time.monotonic() + min(30.0, max(5.0, deadline - time.monotonic()))
        while True:
            state = self.exec("systemctl", "is-system-running", check=False, timeout=30).stdout.strip()
            if state not in ("initializing", "starting") or time.monotonic() > settle:
                break
            time.sleep(1)
        if state == "degraded":
            failed = self.exec("systemctl", "list-units", "--failed", "--no-legend", "--plain", check=False).stdout
            state += ": " + ", ".join(line.split()[0] for line in failed.splitlines() if line.strip())
        elif state == "starting":
            jobs = self.exec("systemctl", "list-jobs", "--no-legend", "--plain", check=False).stdout
            state += ": jobs " + ", ".join(line.split()[1] for line in jobs.splitlines() if len(line.split()) > 1)
        return state

    def cloud_init_status(self) -> str:
        return self.exec("cloud-init", "status", "--long", check=False).stdout

    def reboot(self, timeout: float = 120) -> None:
        """`systemctl reboot` inside: nspawn ends; then the same disk boots again."""
        self.exec("systemctl", "reboot", check=False)
        self._wait_exit(timeout)
        self._after_stop()
        self.start()

    def stop(self, timeout: float = 90) -> None:
        """Graceful power-off (what a terminated instance gets): SIGTERM to nspawn, which
        halts systemd inside; killed when it takes longer than `timeout`."""
        if self.running:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self._wait_exit(timeout)
            except NodeError:
                self.power_off()
                return
        self._after_stop()

    def power_off(self) -> None:
        """A crash: SIGKILL to every process of the node at once (nothing is shut down)."""
        for _ in range(20):
            pids = self.pids()
            if self.proc is not None and self.proc.poll() is None:
                pids.append(self.proc.pid)
            if not pids:
                break
            for root in CGROUP_ROOTS:  # freeze first so nothing forks while being killed
                with contextlib.suppress(OSError):
                    (root / self.cgroup / "cgroup.freeze").write_text("1")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for root in CGROUP_ROOTS:
                with contextlib.suppress(OSError):
                    (root / self.cgroup / "cgroup.freeze").write_text("0")
            time.sleep(0.3)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self._after_stop()

    def _wait_exit(self, timeout: float) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NodeError(f"{self.name}: nspawn still running {timeout}s after the stop/reboot") from None

    def _after_stop(self) -> None:
        """Remove what is left of a stopped boot: stray processes and cgroups."""
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        for root in CGROUP_ROOTS:
            base = root / self.cgroup
            if not base.exists():
                continue
            dirs = [Path(d) for d, _sub, _files in os.walk(base, onerror=lambda _err: None)]
            for path in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    path.rmdir()

    def close(self) -> None:
        """Everything stopped, the overlay unmounted, the cgroups removed; the disk deleted."""
        if self.running:
            self.power_off()
        self._after_stop()
        for root in CGROUP_ROOTS:
            with contextlib.suppress(OSError):
                (root / self.cgroup).rmdir()
        for _ in range(5):
            if not os.path.ismount(self.merged):
                break
            subprocess.run(["umount", str(self.merged)], capture_output=True)
            if os.path.ismount(self.merged):
                time.sleep(0.5)
                subprocess.run(["umount", "-l", str(self.merged)], capture_output=True)

    # --- inside ---

    def exec(self, *args: str, timeout: float = 60, check: bool = True, input: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside the node (all its namespaces), as root."""
        pid = self.init_pid()
        command = ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-C", "--", "/usr/bin/env", "-i",
                   f"PATH={INNER_PATH}", "LANG=C.UTF-8", "HOME=/root", "SYSTEMD_PAGER=", "TERM=dumb",
                   *(f"{k}={v}" for k, v in (env or {}).items()), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise NodeError(f"{self.name}: {' '.join(args)} exited {result.returncode}: "
                            f"{(result.stderr or result.stdout).strip()[-2000:]}")
        return result

    def sh(self, script: str, timeout: float = 60, check: bool = True) -> str:
        return self.exec("bash", "-c", script, timeout=timeout, check=check).stdout

    def read(self, path: str) -> str | None:
        """A file of the node: read inside while it runs, from its disk when it is off."""
        if self.running:
            result = self.exec("cat", path, check=False)
            return result.stdout if result.returncode == 0 else None
        target = self.merged / path.lstrip("/")
        return target.read_text(errors="replace") if target.is_file() else None

    def console_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
