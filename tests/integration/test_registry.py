"""Pulling from the cluster's registry with no stored password (issue 12), on real engines.

A manager and a worker of a real swarm (the harness: moto, which judges the node roles' IAM
calls, and a fake IMDS that hands each node its role's credentials). Debian's
`docker-registry` in a namespace of its own stands in for ECR's endpoint: it takes the
user `AWS` and the password that ECR's `GetAuthorizationToken` hands out (moto's), as ECR
takes the token's. What cannot be faked is ECR's own check of the token and of the
repository policy; moto's IAM judges the token call with the program's node policy.

Each node runs the registry tool as State Manager would (`converge`), in its namespace
and with its role's credentials. Then, on the manager, with no `docker login` and nothing
in the node's Docker config but the helper's name:
- `docker service create --with-registry-auth` runs a task on the worker, which pulls the
  image it never had;
- a service deployed with credentials that expired cannot run a task on the worker until
  the leader's refresh gives it fresh ones; and the refresh leaves a running task where it is.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import require_harness

pytestmark = pytest.mark.integration

PORT = 5000


@dataclass
class Swarm:
    harness: Any
    manager: Any
    worker: Any
    registry: str
    """host:port of the stand-in registry."""
    password: str
    """What ECR (moto) hands out for the account."""
    tool: str
    """The rendered registry tool."""


def require_registry() -> str:
    found = shutil.which("docker-registry")
    if found:
        return found
    reason = "docker-registry (Debian's package of the registry) is not installed"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def bcrypt(password: str) -> str:
    """The registry's htpasswd takes bcrypt only; glibc's crypt (libxcrypt) makes it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    assert hashed and hashed.startswith("$2"), f"this libc's crypt makes no bcrypt: {hashed!r}"
    return hashed


def start_registry(h: Any, binary: str) -> str:
    """The stand-in registry in its own namespace, behind basic auth as ECR's password."""
    from harness import SUBNET, Network

    ip = f"{SUBNET}.3"
    ns = f"{h.net.prefix}-registry"
    h.net.attach(ns, ip)
    home = h.tmp / "registry"
    (home / "data").mkdir(parents=True)
    password = f"{h.cloud.identities.account}-auth-token"  # moto's GetAuthorizationToken
    (home / "htpasswd").write_text(f"AWS:{bcrypt(password)}\n")
    (home / "config.yml").write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1, "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(home / "data")}},
        "http": {"addr": f"{ip}:{PORT}", "secret": "swarmstack-test"},
        "auth": {"htpasswd": {"realm": "swarmstack-test", "path": str(home / "htpasswd")}},
    }))
    h.procs.start(["nsenter", f"--net={Network.path(ns)}", binary, "serve", str(home / "config.yml")],
                  home / "registry.log")
    deadline = time.monotonic() + 30
    while True:
        probe = subprocess.run(["nsenter", f"--net={Network.path(ns)}", "curl", "-s", "-o", "/dev/null",
                                "-w", "%{http_code}", f"http://{ip}:{PORT}/v2/"], capture_output=True, text=True)
        if probe.stdout == "401":  # up, and asking for credentials
            return f"{ip}:{PORT}"
        if time.monotonic() > deadline:
            raise AssertionError(f"the registry did not start: {(home / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.3)


def node_env(node: Any) -> dict[str, str]:
    """The node's environment as the tool sees it: the helper where the CLI finds it, root's
    Docker config in the node's directory."""
    env = node.env()
    return {**env, "PATH": f"{node.dir / 'bin'}:{env['PATH']}",
            "SWARMSTACK_CREDENTIAL_HELPER": str(node.dir / "bin" / "docker-credential-swarmstack"),
            "SWARMSTACK_DOCKER_CONFIG": str(node.dir / "docker-config")}


def run_tool(node: Any, command: str) -> subprocess.CompletedProcess[str]:
    from harness import Network

    result = subprocess.run(["nsenter", f"--net={Network.path(node.ns)}", "bash", str(node.dir / "swarmstack-registry"),
                             command], env=node_env(node), capture_output=True, text=True, timeout=120)
    with open(node.dir / "commands.log", "a") as out:
        out.write(f"--- registry {command} exited {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def helper_get(node: Any, server: str) -> subprocess.CompletedProcess[str]:
    """`docker-credential-swarmstack get` in the node's namespace, as the Docker CLI calls it."""
    from harness import Network

    helper = node.dir / "bin" / "docker-credential-swarmstack"
    return subprocess.run(["nsenter", f"--net={Network.path(node.ns)}", str(helper), "get"], input=server,
                          env=node_env(node), capture_output=True, text=True, timeout=60)


def node_docker(node: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The docker CLI on the node as root would run it: the node's own Docker config."""
    from harness import DOCKER, Network

    env = node_env(node)
    env["DOCKER_CONFIG"] = env["SWARMSTACK_DOCKER_CONFIG"]  # root's ~/.docker, in the node's directory
    result = subprocess.run(["nsenter", f"--net={Network.path(node.ns)}", DOCKER, "-H", f"unix://{node.socket}",
                             *args], env=env, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{node.name}: docker {' '.join(args)}: {result.stderr.strip()}")
    return result


@pytest.fixture(scope="module")
def swarm() -> Iterator[Swarm]:
    require_harness()
    binary = require_registry()
    import node_iam
    from certs import make_bundle
    from harness import REGION, SUBNET, Harness

    from components.aws.registry import repository_arn, repository_name
    from components.common.namespace import log_group_names
    from userdata.params import RegistryTool
    from userdata.render import registry_tool

    h = Harness(timer_period=2.0)
    try:
        assert h.cloud is not None and h.net is not None
        registry = start_registry(h, binary)
        h.insecure_registries.append(registry)
        # The node policy of a cluster with the repository `app` (identity.node_policy).
        node_iam.grant_node_policies(
            h.cloud.aws, h.cloud.identities, h.region, h.cluster, list(log_group_names(h.cluster).values()),
            h.key_arn, h.generation,
            repository_arns=[repository_arn("aws", REGION, h.cloud.identities.account,
                                            repository_name(h.cluster, "app"))])
        h.provision(1, {"general": 1}, tls=make_bundle([f"{SUBNET}.{i}" for i in range(10, 20)]).ssm_values())
        (manager,), (worker,) = h.add_nodes("managers"), h.add_nodes("general")
        results = h.boot_all([manager, worker])
        assert all(r.returncode == 0 for r in results.values()), {n: r.stderr[-3000:] for n, r in results.items()}
        h.wait_converged(managers=1, workers=1)
        tool = registry_tool(RegistryTool(cluster=h.cluster, cloud="aws", registry=registry, region=REGION))
        for node in (manager, worker):
            (node.dir / "bin").mkdir()
            (node.dir / "swarmstack-registry").write_text(tool)
            (node.dir / "swarmstack-registry").chmod(0o755)  # as the association and the custom data write it
        yield Swarm(h, manager, worker, registry, f"{h.cloud.identities.account}-auth-token", tool)
    finally:
        h.close()


def push_image(swarm: Swarm, tag: str) -> str:
    """What a developer's CI does: push an image into the registry, with its own login (not
    the node's): the test's client config, through the manager's engine."""
    from harness import DOCKER, Network

    pusher = swarm.harness.tmp / "pusher"
    pusher.mkdir(exist_ok=True)
    auth = base64.b64encode(f"AWS:{swarm.password}".encode()).decode()
    (pusher / "config.json").write_text(json.dumps({"auths": {swarm.registry: {"auth": auth}}}))
    image = f"{swarm.registry}/{swarm.harness.cluster}/app:{tag}"
    base = [DOCKER, "--config", str(pusher), "-H", f"unix://{swarm.manager.socket}"]
    subprocess.run([*base, "tag", "swarmstack/sleep:test", image], check=True, timeout=60)
    pushed = subprocess.run(["nsenter", f"--net={Network.path(swarm.manager.ns)}", *base, "push", image],
                            capture_output=True, text=True, timeout=120)
    assert pushed.returncode == 0, pushed.stderr
    subprocess.run([*base, "rmi", image], check=True, capture_output=True, timeout=60)
    return image


def repository(image: str) -> str:
    return image.rsplit(":", 1)[0]


def images(node: Any) -> set[str]:
    return set(node_docker(node, "image", "ls", "--format", "{{.Repository}}").stdout.split())


def tasks(swarm: Swarm, service: str) -> list[dict[str, str]]:
    out = node_docker(swarm.manager, "service", "ps", service, "--no-trunc", "--format",
                      "{{json .}}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def running_on_worker(swarm: Swarm, service: str, timeout: float = 90) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        for task in tasks(swarm, service):
            if task["CurrentState"].startswith("Running") and task["DesiredState"] == "Running":
                assert task["Node"] == swarm.worker.name, task
                return task
        if time.monotonic() > deadline:
            log = [line for line in (swarm.worker.dir / "dockerd.log").read_text(errors="replace").splitlines()
                   if "pull" in line.lower() or "registry" in line.lower()][-8:]
            raise AssertionError(f"{service} never ran on the worker: {tasks(swarm, service)[:2]}\n"
                                 + "\n".join(log))
        time.sleep(1)


def version(swarm: Swarm, service: str) -> int:
    return int(node_docker(swarm.manager, "service", "inspect", service, "--format", "{{.Version.Index}}").stdout)


def test_each_node_installs_the_helper_and_stores_no_password(swarm: Swarm) -> None:
    for node in (swarm.manager, swarm.worker):
        result = run_tool(node, "converge")
        assert result.returncode == 0, result.stderr
        config = json.loads((node.dir / "docker-config" / "config.json").read_text())
        assert config == {"credHelpers": {swarm.registry: "swarmstack"}}
        got = helper_get(node, swarm.registry)
        assert got.returncode == 0, got.stderr  # the node role's token, from moto, under the program's policy
        assert json.loads(got.stdout) == {"ServerURL": swarm.registry, "Username": "AWS", "Secret": swarm.password}
        assert swarm.password not in "".join(p.read_text() for p in (node.dir / "docker-config").iterdir())


def test_a_service_deployed_from_a_manager_without_a_login_runs_on_the_worker(swarm: Swarm) -> None:
    image = push_image(swarm, "1")
    assert repository(image) not in images(swarm.worker)  # the worker never had it
    node_docker(swarm.manager, "service", "create", "--detach", "--with-registry-auth", "--name", "web",
                "--constraint", "node.role==worker", image)
    running_on_worker(swarm, "web")
    assert repository(image) in images(swarm.worker)  # it pulled it (by the digest the manager pinned)


def test_expired_credentials_are_replaced_by_the_leaders_refresh_and_running_tasks_stay(swarm: Swarm) -> None:
    from harness import DOCKER, Network

    image = push_image(swarm, "2")
    # Deployed 12 hours ago: the credentials the service carries no longer work.
    stale = swarm.harness.tmp / "stale"
    stale.mkdir()
    (stale / "config.json").write_text(json.dumps({"auths": {swarm.registry: {
        "auth": base64.b64encode(b"AWS:expired-token").decode()}}}))
    created = subprocess.run(["nsenter", f"--net={Network.path(swarm.manager.ns)}", DOCKER, "--config", str(stale),
                              "-H", f"unix://{swarm.manager.socket}", "service", "create", "--detach",
                              "--with-registry-auth", "--name", "late", "--constraint", "node.role==worker", image],
                             capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    deadline = time.monotonic() + 60
    while not any("rejected" in t["CurrentState"].lower() or t["Error"] for t in tasks(swarm, "late")):
        assert time.monotonic() < deadline, tasks(swarm, "late")
        time.sleep(1)
    assert not any(t["CurrentState"].startswith("Running") for t in tasks(swarm, "late"))

    web_task = running_on_worker(swarm, "web")
    web_version = version(swarm, "web")
    node_docker(swarm.manager, "service", "create", "--detach", "--name", "local", "swarmstack/sleep:test")
    local_version = version(swarm, "local")

    refreshed = run_tool(swarm.manager, "refresh")  # what State Manager runs every 30 minutes
    assert refreshed.returncode == 0, refreshed.stderr
    assert "late: fresh registry credentials" in refreshed.stdout
    assert "web: fresh registry credentials" in refreshed.stdout
    running_on_worker(swarm, "late")  # pulled with the fresh credentials
    assert version(swarm, "web") > web_version  # the credentials changed...
    assert running_on_worker(swarm, "web")["ID"] == web_task["ID"]  # ...and the running task stayed
    assert version(swarm, "local") == local_version  # an image from elsewhere: untouched

    worker_refresh = run_tool(swarm.worker, "refresh")  # not a manager: nothing to do
    assert worker_refresh.returncode == 0 and worker_refresh.stdout == ""


def test_without_the_registry_grant_the_node_gets_no_credentials(swarm: Swarm) -> None:
    import node_iam

    from components.common.namespace import log_group_names

    h = swarm.harness
    node_iam.grant_node_policies(h.cloud.aws, h.cloud.identities, h.region, h.cluster,
                                 list(log_group_names(h.cluster).values()), h.key_arn, h.generation)
    deadline = time.monotonic() + 30
    while True:  # IAM applies a changed policy within seconds (moto: at once)
        got = helper_get(swarm.worker, swarm.registry)
        if got.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert got.returncode == 1, got.stdout
    assert "AccessDenied" in got.stderr and f"no credentials for {swarm.registry}" in got.stderr
    # The CLI would send empty credentials when the helper fails: the refresh must send none.
    before = version(swarm, "web")
    refreshed = run_tool(swarm.manager, "refresh")
    assert refreshed.returncode == 1 and "no service updated" in refreshed.stderr
    assert version(swarm, "web") == before
    running_on_worker(swarm, "web")
    # What fetching first guards against: the CLI itself goes on when its helper fails, and
    # sends the service credentials that are empty.
    plain = node_docker(swarm.manager, "service", "update", "--detach", "--with-registry-auth", "web", check=False)
    assert plain.returncode == 0 and version(swarm, "web") > before, plain.stderr
