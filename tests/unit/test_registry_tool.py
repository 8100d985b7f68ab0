"""The registry tool (issue 12): the Docker credential helper that answers with the node's own
cloud identity, root's Docker config that names it, and the leader's refresh of the services'
registry credentials; delivered by a State Manager association on AWS and by the custom data
and a timer on Azure.

The tool runs here under bash against stand-ins: an `aws` command that answers as ECR does,
a loopback IMDS and ACR token exchange, and a `docker` command that records what it is asked.
`tests/integration/test_registry.py` runs it against real engines and a real registry.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import stat
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from test_aws_registry import Deployed, deployed  # noqa: F401  (the module's fixture)
from test_azure_registry import deployed as azure_deployed
from test_userdata import tool_path

from components.aws.registry import SCHEDULE, tool_script
from components.common.node_paths import CREDENTIAL_HELPER, REGISTRY_TOOL, UNIT_DIR
from userdata.params import RegistryTool
from userdata.render import files_of, registry_tool

AWS_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
AZURE_HOST = "prodrega1b2c3.azurecr.io"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
PASSWORD = "eyJwYXlsb2FkIjoi-ecr-password=="
FAKE_DOCKER = r"""#!/bin/bash
# Records each call; answers as a swarm's leader (or $ROLE) running the services in $SERVICES.
echo "$*" >>"$CALLS"
case "$1 $2" in
  "info --format") [[ ${ROLE:-leader} == worker ]] && echo false || echo true ;;
  "node inspect") [[ ${ROLE:-leader} == leader ]] && echo true || echo false ;;
  "service ls") cat "$SERVICES" 2>/dev/null || true ;;
  "service inspect") grep -q "^$3 " "$STATES" 2>/dev/null && grep "^$3 " "$STATES" | cut -d' ' -f2 || true ;;
  "service update") [[ ${FAIL_UPDATE:-} == "${*: -1}" ]] && exit 1 || true ;;
esac
"""


def render(cloud: str) -> str:
    if cloud == "aws":
        return registry_tool(RegistryTool(cluster="prod", cloud="aws", registry=AWS_HOST, region="eu-west-1"))
    return registry_tool(RegistryTool(cluster="prod", cloud="azure", registry=AZURE_HOST,
                                      identity_client_id=CLIENT_ID))


class Node:
    """A scratch node: the tool, its helper link and root's Docker config under `tmp`."""

    def __init__(self, tmp: Path, cloud: str = "aws") -> None:
        self.tmp, self.bin = tmp, tmp / "bin"
        self.bin.mkdir(exist_ok=True)
        self.tool = tmp / "swarmstack-registry"
        self.tool.write_text(render(cloud))
        self.tool.chmod(0o755)
        self.helper = self.bin / "docker-credential-swarmstack"
        self.config = tmp / "docker" / "config.json"
        self.calls = tmp / "calls"
        self.states = tmp / "states"
        token = base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()
        self._script("aws", f'#!/bin/bash\necho "$*" >>"{tmp}/aws-calls"\n'
                            f'[[ -n ${{AWS_FAIL:-}} ]] && {{ echo "AccessDenied" >&2; exit 254; }}\necho {token}\n')
        self._script("docker", FAKE_DOCKER)
        for tool in ("curl", "python3", "base64"):  # what a secret passes through: record each command line
            real = shutil.which(tool, path="/usr/bin:/bin")
            assert real is not None, tool
            self._script(tool, f'#!/bin/bash\nprintf "%s\\n" "$*" >>"{tmp}/argv"\nexec {real} "$@"\n')

    def argv(self) -> str:
        path = self.tmp / "argv"
        return path.read_text() if path.exists() else ""

    def _script(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.tmp), "CALLS": str(self.calls),
                "STATES": str(self.states), "SERVICES": str(self.tmp / "services"), "SWARMSTACK_CREDENTIAL_HELPER": str(self.helper),
                "SWARMSTACK_DOCKER_CONFIG": str(self.config.parent), **extra}

    def run(self, *args: str, services: tuple[str, ...] = (), **extra: str) -> subprocess.CompletedProcess[str]:
        (self.tmp / "services").write_text("".join(f"{s}\n" for s in services))
        return subprocess.run(["bash", *args], env=self.env(**extra), capture_output=True, text=True, timeout=60)

    def helper_get(self, server: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.helper), "get"], input=server + "\n", env=self.env(**extra),
                              capture_output=True, text=True, timeout=60)

    def updates(self) -> list[str]:
        calls = self.calls.read_text().splitlines() if self.calls.exists() else []
        return [c.split()[-1] for c in calls if c.startswith("service update")]


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


def test_install_names_the_helper_for_the_registry_and_keeps_the_rest_of_the_config(node: Node) -> None:
    node.config.parent.mkdir()
    node.config.write_text(json.dumps({
        "auths": {AWS_HOST: {"auth": "QVdTOnN0YWxl"}, "ghcr.io": {"auth": "dXNlcjpwdw=="}},
        "credHelpers": {"gcr.io": "gcloud"}, "detachKeys": "ctrl-x"}))
    result = node.run(str(node.tool), "install")
    assert result.returncode == 0, result.stderr
    config = json.loads(node.config.read_text())
    assert config["credHelpers"] == {"gcr.io": "gcloud", AWS_HOST: "swarmstack"}
    assert config["auths"] == {"ghcr.io": {"auth": "dXNlcjpwdw=="}}  # the stale ECR password is gone
    assert config["detachKeys"] == "ctrl-x"
    assert stat.S_IMODE(node.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(node.config.parent.stat().st_mode) == 0o700
    assert node.helper.is_symlink() and node.helper.resolve() == node.tool.resolve()
    before = node.config.stat().st_mtime_ns
    again = node.run(str(node.tool), "install")  # the next run: nothing to change
    assert again.returncode == 0 and again.stdout == "" and node.config.stat().st_mtime_ns == before


def test_install_takes_a_null_section_and_refuses_one_that_is_not_an_object(node: Node) -> None:
    node.config.parent.mkdir()
    node.config.write_text(json.dumps({"credHelpers": None, "auths": None}))
    assert node.run(str(node.tool), "install").returncode == 0
    assert json.loads(node.config.read_text())["credHelpers"] == {AWS_HOST: "swarmstack"}
    node.config.write_text(json.dumps({"auths": "not an object"}))
    result = node.run(str(node.tool), "install")
    assert result.returncode == 1 and "its credHelpers and its auths must be JSON objects" in result.stderr


def test_install_refuses_a_config_that_is_not_json_and_says_which(node: Node) -> None:
    node.config.parent.mkdir()
    node.config.write_text("{not json")
    result = node.run(str(node.tool), "install")
    assert result.returncode != 0
    assert f"{node.config} is not JSON" in result.stderr and "fix or remove it" in result.stderr
    assert node.config.read_text() == "{not json"


def test_the_helper_answers_for_the_registry_with_the_nodes_ecr_token(node: Node) -> None:
    assert node.run(str(node.tool), "install").returncode == 0
    for server in (AWS_HOST, f"https://{AWS_HOST}", f"https://{AWS_HOST}/"):
        result = node.helper_get(server)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"ServerURL": AWS_HOST, "Username": "AWS", "Secret": PASSWORD}
    calls = (node.tmp / "aws-calls").read_text().splitlines()
    assert calls[0] == ("ecr get-authorization-token --region eu-west-1 --output text "
                        "--query authorizationData[0].authorizationToken")
    bare = subprocess.run([str(node.helper), "get"], input=AWS_HOST, env=node.env(),  # as the CLI: no newline
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode == 0 and json.loads(bare.stdout)["Secret"] == PASSWORD
    other = node.helper_get("ghcr.io")  # not ours: "not found", the CLI goes on without
    assert other.returncode == 1 and other.stdout.strip() == "credentials not found in native keychain"
    assert len((node.tmp / "aws-calls").read_text().splitlines()) == 4  # no cloud call for it
    denied = node.helper_get(AWS_HOST, AWS_FAIL="1")
    assert denied.returncode == 1 and f"no credentials for {AWS_HOST} from the node identity" in denied.stderr
    listed = subprocess.run([str(node.helper), "list"], env=node.env(), capture_output=True, text=True)
    assert json.loads(listed.stdout) == {AWS_HOST: "AWS"}
    stored = subprocess.run([str(node.helper), "store"], input='{"ServerURL":"x","Username":"u","Secret":"s"}',
                            env=node.env(), capture_output=True, text=True)
    assert stored.returncode == 0 and not list(node.tmp.rglob("*.secret"))
    assert "Secret" not in node.config.read_text() and PASSWORD not in node.config.read_text()
    assert "-d" in node.argv() and "-c import json" in node.argv() and PASSWORD not in node.argv()  # no secret in argv


def test_the_leader_refreshes_the_registrys_services_and_leaves_the_others(node: Node) -> None:
    services = (f"web {AWS_HOST}/prod/app:1.2", "proxy traefik:v2.10", f"api {AWS_HOST}/prod/team/api@sha256:ab",
                f"canary {AWS_HOST}/prod/app:1.3", "mirror ghcr.io/prod/app:1")
    node.states.write_text("canary paused\n")
    result = node.run(str(node.tool), "converge", services=services)
    assert result.returncode == 0, result.stderr
    assert node.updates() == ["web", "api"]  # the paused rollout is not resumed behind the user's back
    assert "canary: update paused, left alone" in result.stdout
    calls = node.calls.read_text().splitlines()
    assert "service update --quiet --detach --with-registry-auth web" in calls
    assert json.loads(node.config.read_text())["credHelpers"] == {AWS_HOST: "swarmstack"}


def test_without_credentials_the_refresh_updates_nothing(node: Node) -> None:
    """The CLI would send a service empty credentials when its helper fails (it drops the
    error), replacing ones that still work: a refresh without credentials must not update."""
    result = node.run(str(node.tool), "refresh", services=(f"web {AWS_HOST}/prod/app:1",), AWS_FAIL="1")
    assert result.returncode == 1 and "no credentials from the node identity: no service updated" in result.stderr
    assert node.updates() == []


def test_within_a_refresh_the_helper_answers_with_the_credentials_fetched_once(node: Node) -> None:
    assert node.run(str(node.tool), "install").returncode == 0
    result = node.helper_get(AWS_HOST, SWARMSTACK_CREDENTIALS="AWS fetched-by-the-refresh")
    assert json.loads(result.stdout)["Secret"] == "fetched-by-the-refresh"
    assert not (node.tmp / "aws-calls").exists()  # no cloud call of its own
    services = tuple(f"s{i} {AWS_HOST}/prod/app:{i}" for i in range(3))
    assert node.run(str(node.tool), "refresh", services=services).returncode == 0
    assert node.updates() == ["s0", "s1", "s2"]
    assert len((node.tmp / "aws-calls").read_text().splitlines()) == 1  # one token for all three


@pytest.mark.parametrize("role", ["follower", "worker"])
def test_only_the_leader_refreshes(node: Node, role: str) -> None:
    result = node.run(str(node.tool), "converge", services=(f"web {AWS_HOST}/prod/app:1",), ROLE=role)
    assert result.returncode == 0, result.stderr
    assert node.updates() == []
    assert node.config.exists()  # every node gets the helper


def test_a_failed_update_fails_the_run_after_the_others(node: Node) -> None:
    services = (f"web {AWS_HOST}/prod/app:1", f"api {AWS_HOST}/prod/api:1")
    result = node.run(str(node.tool), "refresh", services=services, FAIL_UPDATE="web")
    assert result.returncode == 1
    assert node.updates() == ["web", "api"] and "api: fresh registry credentials" in result.stdout


def test_an_unknown_command_says_what_is_valid(node: Node) -> None:
    result = node.run(str(node.tool), "login")
    assert result.returncode == 2 and "usage: swarmstack-registry converge|install|refresh" in result.stderr


class _Azure(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def _answer(self, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # IMDS
        url = urllib.parse.urlsplit(self.path)
        self.requests.append({"path": url.path, "query": urllib.parse.parse_qs(url.query),
                              "metadata": self.headers.get("Metadata")})
        self._answer({"access_token": "entra-token", "token_type": "Bearer"})

    def do_POST(self) -> None:  # the registry's /oauth2/exchange
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.requests.append({"path": self.path, "form": form})
        if form.get("access_token") != ["entra-token"]:
            self.send_response(401)
            self.end_headers()
            return
        self._answer({"refresh_token": "acr-refresh-token"})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def azure_endpoint() -> Iterator[str]:
    _Azure.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Azure)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_on_azure_the_helper_exchanges_the_identitys_token_for_an_acr_refresh_token(
        tmp_path: Path, azure_endpoint: str) -> None:
    node = Node(tmp_path, "azure")
    assert node.run(str(node.tool), "install").returncode == 0
    result = node.helper_get(AZURE_HOST, SWARMSTACK_IMDS_ENDPOINT=azure_endpoint,
                             SWARMSTACK_REGISTRY_EXCHANGE=f"{azure_endpoint}/oauth2/exchange")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ServerURL": AZURE_HOST, "Username": "00000000-0000-0000-0000-000000000000",
                                         "Secret": "acr-refresh-token"}
    imds, exchange = _Azure.requests
    assert imds["path"] == "/metadata/identity/oauth2/token" and imds["metadata"] == "true"
    # ACR's own audience: accepted even where a policy turned off ARM-audience tokens for the registry
    assert imds["query"] == {"api-version": ["2018-02-01"], "resource": ["https://containerregistry.azure.net"],
                             "client_id": [CLIENT_ID]}
    assert exchange["path"] == "/oauth2/exchange"
    assert exchange["form"] == {"grant_type": ["access_token"], "service": [AZURE_HOST],
                                "access_token": ["entra-token"]}
    assert json.loads(node.config.read_text())["credHelpers"] == {AZURE_HOST: "swarmstack"}
    argv = node.argv()  # both tokens went through curl and python3, neither on a command line
    assert "oauth2/exchange" in argv and "entra-token" not in argv and "acr-refresh-token" not in argv


def test_the_tool_is_shellcheck_clean_on_both_clouds(tmp_path: Path) -> None:
    shellcheck = tool_path("shellcheck")  # skips, or fails under CI=true, without it
    for cloud in ("aws", "azure"):
        file = tmp_path / f"{cloud}.sh"
        file.write_text(render(cloud))
        result = subprocess.run([shellcheck, "--severity=style", str(file)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout
    script = tmp_path / "association.sh"
    script.write_text(tool_script("prod", "eu-west-1", AWS_HOST))
    result = subprocess.run([shellcheck, "--severity=style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_association_script_writes_the_tool_and_runs_it(tmp_path: Path) -> None:
    node = Node(tmp_path)
    script = tool_script("prod", "eu-west-1", AWS_HOST).replace(REGISTRY_TOOL, str(tmp_path / "sbin-tool"))
    result = subprocess.run(["bash", "-c", script], env=node.env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sbin-tool").read_text() == render("aws")
    assert os.access(tmp_path / "sbin-tool", os.X_OK)
    assert json.loads(node.config.read_text())["credHelpers"] == {AWS_HOST: "swarmstack"}
    assert not list(tmp_path.glob("sbin-tool.*"))  # no temporary file left


def test_the_tool_refuses_what_would_break_it() -> None:
    with pytest.raises(ValueError, match="registry 'Bad Host' must be a registry host"):
        RegistryTool(cluster="prod", cloud="aws", registry="Bad Host", region="eu-west-1")
    with pytest.raises(ValueError, match="identity_client_id '' must be a GUID"):
        RegistryTool(cluster="prod", cloud="azure", registry=AZURE_HOST)


def test_on_aws_one_association_keeps_the_tool_on_every_node(deployed: Deployed) -> None:  # noqa: F811
    (detail,) = [a for a in deployed.backend.state.get("associations", {}).values()
                 if a["associationName"] == "swarmstack-prod-registry"]
    assert detail["name"] == "AWS-RunShellScript" and detail["scheduleExpression"] == SCHEDULE == "rate(30 minutes)"
    assert detail["targets"] == [{"key": "tag:swarmstack:cluster", "values": ["prod"]}]
    (cluster,) = deployed.graph.of_type("swarmstack:aws:Cluster")
    host = cluster.outputs["registry"]
    commands = detail["parameters"]["commands"]
    assert commands == tool_script("prod", "eu-west-1", host)
    assert f"readonly REGISTRY={host}" in commands


def test_on_azure_the_custom_data_carries_the_tool_and_its_timer_and_nodes_wait_for_the_registry() -> None:
    graph, _ = azure_deployed()
    (registry,) = graph.of_type("azure-native:containerregistry:Registry")
    host = registry.outputs["loginServer"]
    scale_sets = graph.of_type("azure-native:compute:VirtualMachineScaleSet")
    assert len(scale_sets) >= 2
    for scale_set in scale_sets:
        custom = gzip.decompress(base64.b64decode(
            scale_set.inputs["virtualMachineProfile"]["osProfile"]["customData"])).decode()
        files = files_of(custom)
        tool = files[REGISTRY_TOOL]
        assert f"readonly REGISTRY={host}" in tool and "/oauth2/exchange" in tool
        assert f"ExecStart={REGISTRY_TOOL} converge" in files[f"{UNIT_DIR}/swarmstack-registry.service"]
        timer = files[f"{UNIT_DIR}/swarmstack-registry.timer"]
        assert "OnActiveSec=10s" in timer and "OnUnitActiveSec=30min" in timer
        assert "swarmstack-registry.timer" in custom.split("runcmd:", 1)[1]
        assert CREDENTIAL_HELPER.endswith("/docker-credential-swarmstack")
        assert graph.depends_on(scale_set.urn, registry.urn)
        pulls = [r for r in graph.of_type("azure-native:authorization:RoleAssignment")
                 if r.inputs["scope"] == registry.id]
        assert pulls and all(graph.depends_on(scale_set.urn, r.urn) for r in pulls)
