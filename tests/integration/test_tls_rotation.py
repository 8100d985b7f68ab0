"""Rotating the Docker API's CA and server certificate on a live swarm (issue 10).

Three managers with the TLS Docker API form a swarm on real engines (the AWS harness:
moto, a fake IMDS, one dockerd per namespace). Then the rotation of
docs/operations.md, "Rotating the Docker API certificates", step by step:

1. `pulumi up --replace` of the CA's private key: pulumi-tls draws a new CA key and
   certificate and re-signs the server and client certificates (their own keys stay:
   they do not depend on the CA), and the SSM parameters `tls/ca-cert` and
   `tls/server-cert` change (`tls/server-key` does not). The test writes exactly that.
2. The managers' converge timer: the test runs `swarmstack-node converge` on each
   manager in turn, as `swarmstack-converge.timer` would, with systemd played by
   `fake_systemd.py`; a run that fails is run again, as `Restart=on-failure` does.
3. `swarmstack context STACK --outputs FILE` with the new outputs.

What it shows: every manager restarts its engine once, never two at a time, the swarm
keeps its leader (a watcher reads `docker node ls` all along), the cluster and node ids
stay; the docker CLI with the new bundle reaches every manager, with the old bundle
it is refused in the TLS handshake (both ways: the old CA does not accept the new
server certificate, and the engine no longer accepts the old client certificate);
a second converge run changes nothing. Then a renewal of the CA with the same key
(`--replace` of the CA certificate alone): old and new bundles both still work, which
is why the runbook replaces the key.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import require_harness

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TLS = "/swarmstack/prod/tls"  # the stack's parameters (components/aws/tls.py)
STACK = "rotation"
MAX_LEADERLESS = 30.0
"""Seconds `docker node ls` may go without a leader while a manager's engine restarts:
an election after the leader's engine stops (swarmkit: 10 ticks of 1 s) plus slack."""


# --- certificates, as pulumi-tls makes them on a replacement ------------------


def _pem(cert: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return str(cert.public_bytes(serialization.Encoding.PEM).decode())


def _name(common: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def self_signed_ca(key: Any, common: str) -> str:
    """A CA certificate for `key` (a new one, or the same key again for a renewal)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return _pem(cert)


def resign(ca_cert: str, ca_key: Any, leaf_key_pem: str, common: str, *, server: bool,
           addresses: list[str] = ()) -> str:  # type: ignore[assignment]
    """A leaf certificate for an existing key, signed by the CA: what LocallySignedCert
    does when its CA changes (the leaf's PrivateKey is not replaced)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = serialization.load_pem_private_key(leaf_key_pem.encode(), password=None)
    ca = x509.load_pem_x509_certificate(ca_cert.encode())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())  # type: ignore[arg-type]
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if addresses:
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _pem(builder.sign(ca_key, hashes.SHA256()))


@dataclass(frozen=True)
class Generation:
    """One state of the stack's certificates: what SSM holds and the admin bundle."""

    ca_cert: str
    ca_key: Any
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str

    def bundle(self) -> dict[str, str]:
        return {"ca.pem": self.ca_cert, "cert.pem": self.client_cert, "key.pem": self.client_key}


def reissued(before: Generation, addresses: list[str], *, new_ca_key: bool, common: str) -> Generation:
    """What `pulumi up --replace` of the CA's key (new_ca_key) or of the CA certificate alone gives."""
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key = ec.generate_private_key(ec.SECP256R1()) if new_ca_key else before.ca_key
    ca_cert = self_signed_ca(ca_key, common)
    return Generation(
        ca_cert=ca_cert, ca_key=ca_key,
        server_cert=resign(ca_cert, ca_key, before.server_key, "swarmstack managers", server=True,
                           addresses=addresses),
        server_key=before.server_key,
        client_cert=resign(ca_cert, ca_key, before.client_key, "admin", server=False),
        client_key=before.client_key)


def new_key() -> str:
    """A leaf's private key (PEM), as pulumi-tls's PrivateKey makes it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def first_generation(addresses: list[str]) -> Generation:
    """What the stack's first `pulumi up` makes: a CA, the managers' certificate for
    `addresses`, an admin's client certificate."""
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = self_signed_ca(ca_key, "swarmstack prod CA")
    server_key, client_key = new_key(), new_key()
    return Generation(ca_cert=ca_cert, ca_key=ca_key,
                      server_cert=resign(ca_cert, ca_key, server_key, "swarmstack managers", server=True,
                                         addresses=addresses),
                      server_key=server_key,
                      client_cert=resign(ca_cert, ca_key, client_key, "admin", server=False),
                      client_key=client_key)


# --- the cluster --------------------------------------------------------------


@dataclass
class Rotation:
    harness: Any
    addresses: list[str]
    first: Generation
    generations: dict[str, Generation] = field(default_factory=dict)
    systemd: dict[str, Any] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    """Node name -> swarm node id, at formation."""
    swarm: str = ""
    clients: Path = Path()


@pytest.fixture(scope="module")
def rotation() -> Iterator[Rotation]:
    require_harness()
    from fake_systemd import FakeSystemd
    from harness import SUBNET, Harness

    harness = Harness(timer_period=2.0)
    try:
        addresses = [f"{SUBNET}.{i}" for i in range(10, 20)]
        first = first_generation(addresses)
        harness.provision(3, {}, tls={"ca-cert": first.ca_cert, "server-cert": first.server_cert,
                                      "server-key": first.server_key})
        managers = harness.add_nodes("managers")
        results = harness.boot_all(managers)
        failed = {name: r.stderr[-4000:] for name, r in results.items() if r.returncode != 0}
        assert not failed, failed
        harness.wait_converged(managers=3, workers=0)
        state = Rotation(harness=harness, addresses=addresses, first=first, generations={"first": first},
                         clients=harness.tmp / "clients")
        (state.clients / "home").mkdir(parents=True)
        for node in managers:
            # The launch action was completed at boot (no join hook in the harness's groups):
            # what a node that converged once holds, so `joined` is a no-op as in production.
            (node.dir / "state" / "joined-hook").touch()
            # The harness started dockerd itself after `configure`; the unit's start (what
            # the boot's converge run does in start_engine) consumes the pending restart that
            # `configure` marked for the first daemon.json. Left behind, it would restart the
            # engine at the first converge run whatever the certificates do.
            (node.dir / "state" / "engine-restart-pending").unlink(missing_ok=True)
            state.systemd[node.name] = FakeSystemd(node)
            state.ids[node.name] = node.docker("info", "--format", "{{.Swarm.NodeID}}").strip()
        state.swarm = managers[0].docker("info", "--format", "{{.Swarm.Cluster.ID}}").strip()
        yield state
    finally:
        harness.close()


# --- what an admin's machine does -----------------------------------------------


def client_env(rotation: Rotation) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(rotation.clients / "docker-config"), "HOME": str(rotation.clients / "home"),
            "LANG": "C.UTF-8", "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}


def bundle_files(rotation: Rotation, name: str, bundle: dict[str, str]) -> list[str]:
    """`--tlsverify` flags for a bundle written to files (0600, as swarmstack context writes it)."""
    folder = rotation.clients / name
    folder.mkdir(exist_ok=True)
    for file, text in bundle.items():
        (folder / file).write_text(text)
        (folder / file).chmod(0o600)
    return ["--tlsverify", "--tlscacert", str(folder / "ca.pem"), "--tlscert", str(folder / "cert.pem"),
            "--tlskey", str(folder / "key.pem")]


def remote(rotation: Rotation, *args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI from the cloud namespace (an admin's machine), over TCP."""
    from harness import DOCKER, Network

    return subprocess.run(["nsenter", f"--net={Network.path(rotation.harness.net.cloud)}", DOCKER, *args],
                          capture_output=True, text=True, timeout=60, env=client_env(rotation))


def api(rotation: Rotation, ip: str, flags: list[str]) -> subprocess.CompletedProcess[str]:
    return remote(rotation, "-H", f"tcp://{ip}:2376", *flags, "info", "--format", "{{.Swarm.NodeID}}")


def refused_in_handshake(result: subprocess.CompletedProcess[str]) -> bool:
    text = result.stderr.lower()
    return result.returncode != 0 and any(s in text for s in ("x509", "certificate", "tls:"))


def refused(rotation: Rotation, ip: str, flags: list[str]) -> subprocess.CompletedProcess[str]:
    """`docker version` (which says why it got no server, where `info --format` does not)."""
    return remote(rotation, "-H", f"tcp://{ip}:2376", *flags, "version", "--format", "{{.Server.Version}}")


def swarmstack_context(rotation: Rotation, name: str, bundle: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`swarmstack context STACK --outputs FILE`, FILE as `pulumi stack output --json --show-secrets` writes it."""
    from harness import DOCKER

    outputs = rotation.clients / f"{name}.json"
    outputs.write_text(json.dumps({"dockerHost": f"tcp://{rotation.harness.live('manager')[0].ip}:2376",
                                   "clientTls": bundle, "managerGroup": "swarmstack-prod-managers"}))
    return subprocess.run([sys.executable, "-m", "swarmstack.cli", "context", STACK, "--outputs", str(outputs),
                           "--docker", DOCKER], capture_output=True, text=True, cwd=ROOT, env=client_env(rotation),
                          timeout=60)


# --- the rotation ---------------------------------------------------------------


class LeaderWatch:
    """`docker node ls` from any live manager, twice a second: the longest stretch without a leader."""

    def __init__(self, harness: Any) -> None:
        self.harness = harness
        self.samples: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rows = self.harness.view()
            leader = rows is not None and any(r["manager"] == "Leader" for r in rows)
            self.samples.append((time.monotonic(), leader))
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def longest_gap(self) -> float:
        longest, since = 0.0, None
        for at, leader in self.samples:
            if not leader and since is None:
                since = at
            elif leader and since is not None:
                longest, since = max(longest, at - since), None
        if since is not None:
            longest = max(longest, self.samples[-1][0] - since)
        return longest


def store(rotation: Rotation, generation: Generation) -> None:
    """The SSM parameters `pulumi up` rewrites: the CA and server certificates (the server key
    is not replaced, so its parameter does not change)."""
    cloud = rotation.harness.cloud
    for name, value in (("ca-cert", generation.ca_cert), ("server-cert", generation.server_cert)):
        cloud.aws("ssm", "put_parameter", Name=f"{TLS}/{name}", Value=value, Type="SecureString", Overwrite=True)
    assert cloud.parameter(f"{TLS}/server-key") == generation.server_key


def converge_until_ok(systemd: Any, seconds: float) -> list[int]:
    """`swarmstack-node converge` on one node until a run succeeds, a failed run run again
    (Restart=on-failure); AssertionError after `seconds`. The exit codes of every run."""
    deadline = time.monotonic() + seconds
    codes: list[int] = []
    while True:
        result = systemd.run("converge", timeout=300)
        codes.append(result.returncode)
        if result.returncode == 0:
            return codes
        assert time.monotonic() < deadline, f"{systemd.node.name}: converge kept failing:\n{result.stderr[-2000:]}"
        time.sleep(2)


def converge_all(rotation: Rotation) -> dict[str, list[int]]:
    """`swarmstack-node converge` on each manager in turn, as its timer would. The exit codes
    of every run, by node."""
    return {node.name: converge_until_ok(rotation.systemd[node.name], 180) for node in rotation.harness.live("manager")}


def engine_restarts(rotation: Rotation, since: float) -> list[Any]:
    """The engine starts, stops and restarts systemd carried out since `since`, in order."""
    return sorted((r for s in rotation.systemd.values() for r in s.restarts if r.began >= since and r.acted),
                  key=lambda r: r.began)


def test_1_the_old_bundle_reaches_every_manager_before_the_rotation(rotation: Rotation) -> None:
    flags = bundle_files(rotation, "first", rotation.first.bundle())
    for node in rotation.harness.live("manager"):
        result = api(rotation, node.ip, flags)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == rotation.ids[node.name]
    made = swarmstack_context(rotation, "first", rotation.first.bundle())
    assert made.returncode == 0, made.stderr
    listed = remote(rotation, "--context", f"swarmstack-{STACK}", "node", "ls", "-q")
    assert sorted(listed.stdout.split()) == sorted(rotation.ids.values()), listed.stderr


def test_2_a_new_ca_reaches_every_manager_one_engine_restart_at_a_time(rotation: Rotation) -> None:
    h = rotation.harness
    new = reissued(rotation.first, rotation.addresses, new_ca_key=True, common="swarmstack prod CA")
    rotation.generations["second"] = new
    started = time.monotonic()
    watch = LeaderWatch(h)
    try:
        store(rotation, new)
        codes = converge_all(rotation)
    finally:
        watch.stop()
    took = time.monotonic() - started
    for node in h.live("manager"):
        assert (node.dir / "tls" / "ca.pem").read_text() == new.ca_cert
        assert (node.dir / "tls" / "server-cert.pem").read_text() == new.server_cert

    restarts = engine_restarts(rotation, started)
    assert [(r.verb, r.ok) for r in restarts] == [("restart", True)] * 3, (restarts, codes)
    assert sorted(r.node for r in restarts) == sorted(rotation.ids), restarts
    for before, after in itertools.pairwise(restarts):
        assert after.began >= before.ended, f"two engines restarted at once: {before} {after}"
    gap = watch.longest_gap()
    assert gap <= MAX_LEADERLESS, f"no leader for {gap:.1f}s"
    assert watch.samples and watch.samples[-1][1], "no leader at the end"

    rows = h.wait_converged(managers=3, workers=0, timeout=60)
    assert sorted(r["id"] for r in rows) == sorted(rotation.ids.values()), "a manager left or rejoined"
    for node in h.live("manager"):
        assert node.docker("info", "--format", "{{.Swarm.Cluster.ID}}").strip() == rotation.swarm

    new_flags = bundle_files(rotation, "second", new.bundle())
    old_flags = bundle_files(rotation, "first", rotation.first.bundle())
    # The old client certificate with the new CA file: only the engine can refuse it.
    mixed_flags = bundle_files(rotation, "mixed", {**rotation.first.bundle(), "ca.pem": new.ca_cert})
    for node in h.live("manager"):
        ok = api(rotation, node.ip, new_flags)
        assert ok.returncode == 0 and ok.stdout.strip() == rotation.ids[node.name], ok.stderr
        old = refused(rotation, node.ip, old_flags)
        assert refused_in_handshake(old), (old.returncode, old.stderr)
        # The engine drops it in the handshake; under TLS 1.3 the client learns that as a
        # reset or as `tls: bad certificate`, while the new bundle gets in at the same moment.
        mixed = refused(rotation, node.ip, mixed_flags)
        assert refused_in_handshake(mixed) or (mixed.returncode != 0 and "connection reset by peer" in mixed.stderr), \
            (mixed.returncode, mixed.stderr)

    # The runbook's last step: the local context, refreshed from the new outputs.
    stale = remote(rotation, "--context", f"swarmstack-{STACK}", "version")
    assert refused_in_handshake(stale), stale.stderr
    again = swarmstack_context(rotation, "second", new.bundle())
    assert again.returncode == 0 and f"swarmstack-{STACK} updated" in again.stdout, again.stderr
    listed = remote(rotation, "--context", f"swarmstack-{STACK}", "node", "ls", "-q")
    assert sorted(listed.stdout.split()) == sorted(rotation.ids.values()), listed.stderr
    print(f"rotation: {took:.1f}s, longest leaderless {gap:.1f}s, converge runs {codes}, "
          f"restarts {[(r.node, round(r.ended - r.began, 1)) for r in restarts]}")


def test_3_a_converge_run_with_unchanged_certificates_restarts_nothing(rotation: Rotation) -> None:
    node = rotation.harness.live("manager")[0]
    started = time.monotonic()
    result = rotation.systemd[node.name].run("converge", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert engine_restarts(rotation, started) == []


def test_4_a_ca_renewed_with_the_same_key_keeps_the_old_bundles_working(rotation: Rotation) -> None:
    """`--replace` of the CA certificate alone: a new CA certificate for the same key, which
    every client certificate of that key still chains to: a renewal, not a rotation. One
    manager takes it (the others are the same code)."""
    second = rotation.generations["second"]
    renewed = reissued(second, rotation.addresses, new_ca_key=False, common="swarmstack prod CA")
    rotation.generations["renewed"] = renewed
    node = rotation.harness.live("manager")[0]
    started = time.monotonic()
    store(rotation, renewed)
    deadline = time.monotonic() + 120
    while (result := rotation.systemd[node.name].run("converge", timeout=300)).returncode != 0:
        assert time.monotonic() < deadline, result.stderr[-2000:]
        time.sleep(2)
    restarts = engine_restarts(rotation, started)
    assert [(r.node, r.verb, r.ok) for r in restarts] == [(node.name, "restart", True)], restarts
    for name, bundle in (("renewed", renewed.bundle()), ("second", second.bundle()),
                         ("second-client-renewed-ca", {**second.bundle(), "ca.pem": renewed.ca_cert}),
                         ("renewed-client-second-ca", {**renewed.bundle(), "ca.pem": second.ca_cert})):
        result = api(rotation, node.ip, bundle_files(rotation, name, bundle))
        assert result.returncode == 0, (name, result.stderr)


def converge_together(rotation: Rotation) -> dict[str, list[int]]:
    """`swarmstack-node converge` on every manager at the same moment, as timers that fire
    together would (RandomizedDelaySec spreads them over 30 s, and an engine restart with its
    election takes longer than the gap between two of them); each node runs again on failure."""
    codes: dict[str, list[int]] = {}
    errors: list[str] = []

    def run(node: Any) -> None:
        try:
            codes[node.name] = converge_until_ok(rotation.systemd[node.name], 300)
        except AssertionError as err:
            errors.append(str(err))

    threads = [threading.Thread(target=run, args=(node,)) for node in rotation.harness.live("manager")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=400)
    assert not errors, errors
    return codes


def test_5_managers_whose_timers_fire_together_restart_their_engines_one_at_a_time(rotation: Rotation) -> None:
    """Every manager sees every other one reachable at the same moment: without a lease held
    across the cluster, all three restart at once and the swarm loses its quorum."""
    h = rotation.harness
    renewed = rotation.generations["renewed"]
    new = reissued(renewed, rotation.addresses, new_ca_key=True, common="swarmstack prod CA")
    rotation.generations["third"] = new
    started = time.monotonic()
    watch = LeaderWatch(h)
    try:
        store(rotation, new)
        codes = converge_together(rotation)
    finally:
        watch.stop()
    restarts = engine_restarts(rotation, started)
    assert [(r.verb, r.ok) for r in restarts] == [("restart", True)] * 3, (restarts, codes)
    for before, after in itertools.pairwise(restarts):
        assert after.began >= before.ended, f"two engines restarted at once: {before} {after}"
    gap = watch.longest_gap()
    assert gap <= MAX_LEADERLESS, f"no leader for {gap:.1f}s"
    rows = h.wait_converged(managers=3, workers=0, timeout=60)
    assert sorted(r["id"] for r in rows) == sorted(rotation.ids.values()), "a manager left or rejoined"
    flags = bundle_files(rotation, "third", new.bundle())
    for node in h.live("manager"):
        ok = api(rotation, node.ip, flags)
        assert ok.returncode == 0 and ok.stdout.strip() == rotation.ids[node.name], ok.stderr
    # The lease is given back: nothing is left in the swarm's configs.
    assert h.live("manager")[0].docker("config", "ls", "-q").strip() == ""
    print(f"together: converge runs {codes}, restarts {[(r.node, round(r.ended - r.began, 1)) for r in restarts]}")
