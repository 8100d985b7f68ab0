"""The base root every real-boot node starts from: Debian bookworm with systemd,
cloud-init, Docker and the AWS CLI, built once by debootstrap and cached.

The cache lives under `/var/cache/swarmstack/realboot/<key>/root`, where the key
hashes the package list and this build recipe: change either and a new root is
built next to the old one. A build happens in a temporary directory renamed into
place when complete, under an exclusive lock, so two pytest processes never build
twice and a half-built root is never used. Nothing here is committed.

The root also carries a local APT repository (`/opt/swarmstack-debs`: the .deb files
of docker.io and everything it depends on, indexed on the host) and
`/etc/apt/sources.list` points only at it: a node whose docker.io was removed can
`apt-get update && apt-get install docker.io` with no network, as a node in a
private subnet with a mirror would.

Run `python tests/realboot/rootfs.py` to build (or just print) the cached root.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("SWARMSTACK_REALBOOT_CACHE", "/var/cache/swarmstack/realboot"))
MIRROR = os.environ.get("SWARMSTACK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
PACKAGES = (
    # systemd as PID 1, and cloud-init (without python3-cffi-backend dpkg leaves it unconfigured)
    "systemd", "systemd-sysv", "dbus", "cloud-init", "python3", "python3-cffi-backend",
    # the engine
    "docker.io", "iptables",
    # what swarmstack-node calls: curl, the AWS CLI v2 (Debian's), jq, flock/logger (util-linux,
    # bsdutils), md5sum/shuf/timeout (coreutils), gzip, ps
    "iproute2", "curl", "ca-certificates", "awscli", "jq", "gzip", "util-linux", "bsdutils", "procps",
    "coreutils", "apt-utils",
)
LOCAL_REPO = "/opt/swarmstack-debs"
# The engine's packages kept as .deb files in the local repository, with their dependencies.
REPO_ROOTS = ("docker.io", "containerd", "runc", "tini")
CLOUD_CFG = """\
# swarmstack real-boot harness: the NoCloud seed is the only datasource; the
# network is the namespace's, already configured.
datasource_list: [NoCloud, None]
network: {config: disabled}
locale: C.UTF-8
"""
HOLD_SECONDS = 600
"""How long a process waits for another's build before giving up."""


def key() -> str:
    """Hash of the package list, the suite and the build recipe (this module's build code)."""
    recipe = inspect.getsource(_build) + inspect.getsource(_local_repo) + CLOUD_CFG
    text = "\n".join([SUITE, *PACKAGES, *REPO_ROOTS, LOCAL_REPO, recipe])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_root() -> Path:
    return CACHE / key() / "root"


def missing_tools() -> list[str]:
    return [tool for tool in ("debootstrap", "dpkg-scanpackages", "chroot") if shutil.which(tool) is None]


def ensure_root(log: Path | None = None) -> Path:
    """The cached base root, built first when absent (under a lock)."""
    root = cached_root()
    if (root.parent / "complete").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        deadline = time.monotonic() + HOLD_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another process has been building {root} for {HOLD_SECONDS}s") from None
                time.sleep(2)
        if (root.parent / "complete").exists():
            return root
        missing = missing_tools()
        if missing:
            raise RuntimeError("cannot build the real-boot root: missing " + ", ".join(missing)
                               + " (apt-get install debootstrap dpkg-dev systemd-container)")
        temp = Path(tempfile.mkdtemp(prefix="building-", dir=CACHE))
        try:
            _build(temp / "root", log or CACHE / f"build-{key()}.log")
            (temp / "complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
            final = root.parent
            if final.exists():
                shutil.rmtree(final)
            temp.rename(final)
        except BaseException:
            _unmount_under(temp)
            shutil.rmtree(temp, ignore_errors=True)
            raise
    return root


def _run(args: list[str], log: Path, timeout: float = 1800) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        result = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{' '.join(args[:3])} ... exited {result.returncode}; see {log}:\n{tail}")


def _build(root: Path, log: Path) -> None:
    """debootstrap, the local repository, then the configuration the nodes need."""
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR], log)
    _local_repo(root, log)
    for stale in (root / "var/cache/apt/archives").glob("*.deb"):
        stale.unlink()
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] file:{LOCAL_REPO} ./\n")
    for extra in (root / "etc/apt/sources.list.d").glob("*"):
        extra.unlink()
    (root / "etc/cloud/cloud.cfg.d/99-local.cfg").write_text(CLOUD_CFG)
    (root / "etc/machine-id").write_text("")
    with contextlib.suppress(FileNotFoundError):
        (root / "var/lib/dbus/machine-id").unlink()
    (root / "etc/hostname").write_text("localhost\n")
    # The user data starts the engine; nothing else may start it first.
    _run(["systemctl", f"--root={root}", "disable", "docker.service", "docker.socket", "containerd.service"], log)
    # No console getty in a container without a terminal; no time sync to a real clock.
    _run(["systemctl", f"--root={root}", "mask", "console-getty.service", "systemd-timesyncd.service",
          "apt-daily.timer", "apt-daily-upgrade.timer"], log)


def _local_repo(root: Path, log: Path) -> None:
    """The engine's .deb files and their dependency closure, indexed with dpkg-scanpackages."""
    repo = root / LOCAL_REPO.lstrip("/")
    repo.mkdir(parents=True)
    closure = subprocess.run(
        ["chroot", str(root), "apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends", *REPO_ROOTS],
        capture_output=True, text=True, check=True).stdout
    names = {line.strip() for line in closure.splitlines() if line and not line.startswith(" ")}
    names.discard("")
    archives = root / "var/cache/apt/archives"
    copied = 0
    for deb in archives.glob("*.deb"):
        if deb.name.split("_", 1)[0] in names:
            shutil.copy2(deb, repo / deb.name)
            copied += 1
    found = {deb.name.split("_", 1)[0] for deb in repo.glob("*.deb")}
    missing = [name for name in REPO_ROOTS if name not in found]
    if missing:
        raise RuntimeError(f"no .deb for {', '.join(missing)} in {archives}")
    index = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, capture_output=True,
                           check=True).stdout
    (repo / "Packages").write_bytes(index)
    with open(log, "a") as out:
        out.write(f"local repository: {copied} packages in {repo}\n")


def _unmount_under(path: Path) -> None:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((p for p in points if p.startswith(str(path) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


if __name__ == "__main__":
    started = time.monotonic()
    built = ensure_root()
    print(f"{built} ({time.monotonic() - started:.0f}s)", file=sys.stderr)
    print(built)
