"""User data: parameters, strict rendering, static checks of every AWS variant, snapshots.

Snapshots of the rendered user data live in tests/unit/snapshots/. After an
intended change to the templates, regenerate them and review the diff:

    SWARMSTACK_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/unit/test_userdata.py -k snapshot
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import gzip
import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import userdata
from components.common.node_paths import DAEMON_BASE, NODE_SCRIPT, STATE_DIR, UNIT_DIR
from swarmstack.config.load import load_stack
from userdata.params import ADDRESS_POOLS, NodeUserData, address_pool_for, params_for
from userdata.render import EC2_USER_DATA_LIMIT, environment, files_of, render, units_of

GENERATION = "0a1b2c3d"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).parent / "snapshots"
TEMPLATES = Path(userdata.__file__).parent / "templates"
AWS_STACKS = ("prod-aws", "dev-aws")


def variants() -> list[tuple[str, str, str]]:
    """Every (stack, role, pool) an AWS stack renders user data for."""
    out = []
    for stack in AWS_STACKS:
        cluster = load_stack(stack, root=ROOT).cluster
        out.append((stack, "manager", "managers"))
        out += [(stack, "worker", pool.name) for pool in cluster.workers]
    return out


VARIANTS = variants()
IDS = [f"{stack}-{role}-{pool}" for stack, role, pool in VARIANTS]


def params(stack: str, role: str, pool: str) -> NodeUserData:
    loaded = load_stack(stack, root=ROOT)
    return params_for(loaded.cluster, loaded.region, role, pool, GENERATION, KEY)


def tool(name: str) -> str:
    return tool_path(name)


def tool_path(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (CI=true: this check must run)", pytrace=False)
        pytest.skip(f"{name} is not installed")
    return path


def base(**changes: object) -> NodeUserData:
    fields: dict[str, object] = dict(cluster="prod", cloud="aws", role="worker", pool="general", region="eu-west-1",
                                     generation=GENERATION, key_arn=KEY,
                                     labels={"tier": "app"}, docker_api=False,
                                     log_groups={k: f"/swarmstack/prod/{k}" for k in
                                                 ("containers", "events", "bootstrap", "prune")})
    fields.update(changes)
    return NodeUserData(**fields)  # type: ignore[arg-type]


# --- parameters ----------------------------------------------------------------


def test_params_for_prod_manager_and_worker() -> None:
    manager = params("prod-aws", "manager", "managers")
    assert (manager.cluster, manager.role, manager.pool, manager.region) == ("prod", "manager", "managers", "eu-west-1")
    assert manager.docker_api is True and manager.labels == {}
    assert manager.log_groups == {k: f"/swarmstack/prod/{k}" for k in ("containers", "events", "bootstrap", "prune")}
    assert manager.ssm_prefix == "/swarmstack/prod"
    assert manager.imds_endpoint == "http://169.254.169.254" and manager.aws_endpoint_url is None
    assert manager.os == "amazonlinux"
    worker = params("prod-aws", "worker", "batch")
    assert worker.docker_api is False and worker.labels == {"tier": "batch"}


def test_params_for_refuses_unknown_pool_and_role() -> None:
    cluster = load_stack("prod-aws", root=ROOT).cluster
    with pytest.raises(ValueError, match="no worker pool 'gpu'; pools: batch, general"):
        params_for(cluster, "eu-west-1", "worker", "gpu", GENERATION, KEY)
    with pytest.raises(ValueError, match="role 'boss' must be manager or worker"):
        params_for(cluster, "eu-west-1", "boss", "managers", GENERATION, KEY)
    with pytest.raises(ValueError, match="a manager's pool is always 'managers'"):
        params_for(cluster, "eu-west-1", "manager", "general", GENERATION, KEY)


def test_managers_carry_every_pools_labels_and_workers_none() -> None:
    cluster = load_stack("prod-aws", root=ROOT).cluster
    manager = params_for(cluster, "eu-west-1", "manager", "managers", GENERATION, KEY)
    assert manager.pool_labels == {"general": {"tier": "app"}, "batch": {"tier": "batch"}}
    assert "readonly TRUSTED_LABELS=('batch tier=batch' 'general tier=app' )" in files_of(render(manager))[NODE_SCRIPT]
    assert params_for(cluster, "eu-west-1", "worker", "general", GENERATION, KEY).pool_labels == {}


def test_managers_with_a_backup_store_run_the_backup_timer_on_its_schedule() -> None:
    cluster = load_stack("prod-aws", root=ROOT).cluster
    manager = dataclasses.replace(params_for(cluster, "eu-west-1", "manager", "managers", GENERATION, KEY),
                                  backup_store="s3://prod-backups-1", backup_schedule="17 3 * * *")
    files = files_of(render(manager))
    assert "OnCalendar=*-*-* 03:17:00 UTC" in files["/etc/systemd/system/swarmstack-backup.timer"]
    assert f"ExecStart={NODE_SCRIPT} backup" in files[f"{UNIT_DIR}/swarmstack-backup.service"]
    assert "swarmstack-backup.timer" in units_of(manager)
    off = dataclasses.replace(manager, backup_store="")
    assert "/etc/systemd/system/swarmstack-backup.timer" not in files_of(render(off))
    assert "swarmstack-backup.timer" not in units_of(off)


def test_logging_off_gives_no_log_groups_and_local_driver() -> None:
    cluster = load_stack("dev-aws", root=ROOT).cluster
    quiet = cluster.model_copy(update={"logging": cluster.logging.model_copy(update={"enabled": False})})
    p = params_for(quiet, "eu-west-1", "worker", "general", GENERATION, KEY)
    assert p.log_groups is None
    daemon = json.loads(files_of(render(p))[DAEMON_BASE])
    assert daemon["log-driver"] == "local"
    assert "readonly BOOTSTRAP_LOG_GROUP=''" in files_of(render(p))[NODE_SCRIPT]


@pytest.mark.parametrize(("change", "message"), [
    ({"cluster": "Prod"}, "cluster 'Prod' must be 2 to 28 lowercase"),
    ({"cloud": "gcp"}, "cloud 'gcp' must be one of aws, azure"),
    ({"role": "boss"}, "role 'boss' must be manager or worker"),
    ({"pool": "managers"}, "must be a worker pool name"),
    ({"region": "eu west"}, "region 'eu west' is not a region name"),
    ({"labels": {"tier": "a b"}}, "label tier='a b': values may hold"),
    ({"labels": {"swarmstack.pool": "x"}}, "label key 'swarmstack.pool'"),
    ({"docker_api": True}, "only managers serve the Docker API"),
    ({"log_groups": {"containers": "/x"}}, "log_groups must have exactly the keys"),
    ({"address_pool": "10.0.0.0/30"}, "must be a /8 to /20"),
    ({"address_pool": "banana"}, "is not an IPv4 network"),
    ({"imds_endpoint": "169.254.169.254"}, "must be an http(s) URL"),
    ({"aws_endpoint_url": "http://x'; rm -rf /"}, "must be an http(s) URL"),
    ({"converge_deadline_seconds": 0}, "converge_deadline_seconds 0 must be a whole number"),
    ({"generation": "xyz"}, "generation 'xyz' must be 8 lowercase hex digits"),
    ({"key_arn": ""}, "key_arn '' must be the ARN of the cluster's KMS key"),
    ({"prune_schedule": "every day"}, "prune_schedule 'every day'"),
    ({"os": "windows"}, "os 'windows' must be one of amazonlinux, ubuntu"),
    ({"pool_labels": {"general": {"tier": "app"}}}, "pool_labels: only managers label the nodes"),
    ({"backup_store": "s3://b-123"}, "backup_store: only managers take backups"),
    ({"role": "manager", "pool": "managers", "backup_store": "prod-backups"},
     "backup_store 'prod-backups' must be s3://<bucket> on aws"),
    ({"backup_schedule": "daily"}, "backup_schedule 'daily'"),
    ({"role": "manager", "pool": "managers", "pool_labels": {"managers": {}}},
     "pool_labels: 'managers' is not a worker pool name"),
    ({"role": "manager", "pool": "managers", "pool_labels": {"gpu": {"tier": "a b"}}},
     "pool_labels: gpu label tier='a b' is not a valid label"),
])
def test_bad_parameters_are_refused_with_a_clear_message(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="invalid node user data: .*" + message.replace("(", r"\(")
                       .replace(")", r"\)").replace("[", r"\[")):
        base(**change)


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=16, max_value=28))
def test_address_pool_never_overlaps_the_vpc(address: int, prefix: int) -> None:
    vpc = ipaddress.IPv4Network((address, prefix), strict=False)
    try:
        pool = address_pool_for(str(vpc))
    except ValueError as err:
        assert all(vpc.overlaps(ipaddress.IPv4Network(p)) for p in ADDRESS_POOLS)
        assert "overlaps every overlay pool" in str(err)
        return
    assert not vpc.overlaps(ipaddress.IPv4Network(pool))
    assert pool == next(p for p in ADDRESS_POOLS if not vpc.overlaps(ipaddress.IPv4Network(p)))


def test_prod_vpc_gets_the_first_pool() -> None:
    assert params("prod-aws", "manager", "managers").address_pool == "10.240.0.0/12"
    assert address_pool_for("10.240.0.0/16") == "172.24.0.0/13"


# --- strict rendering --------------------------------------------------------------


def test_strict_undefined_raises_on_a_missing_value() -> None:
    from userdata.render import _context

    env = environment()
    assert env.undefined is jinja2.StrictUndefined
    context = _context(params("prod-aws", "manager", "managers"))
    env.get_template("node/swarmstack-node.sh.j2").render(context)  # complete: renders
    del context["region"]
    with pytest.raises(jinja2.UndefinedError, match="region"):
        env.get_template("node/swarmstack-node.sh.j2").render(context)
    with pytest.raises(jinja2.UndefinedError, match="region"):
        env.get_template("node/daemon.json.j2").render({"cloud": "aws", "log_groups": {"containers": "/x"}})


def test_rendering_is_deterministic_and_differs_by_role() -> None:
    p = params("prod-aws", "worker", "general")
    assert render(p) == render(params("prod-aws", "worker", "general"))
    assert render(p) != render(params("prod-aws", "worker", "batch"))


def test_unknown_cloud_templates_are_a_clear_error() -> None:
    p = base()
    object.__setattr__(p, "cloud", "gcp")
    with pytest.raises(ValueError, match="no user data templates for cloud 'gcp'"):
        render(p)


def test_files_of_refuses_a_document_that_is_not_cloud_config() -> None:
    with pytest.raises(ValueError, match="not a #cloud-config document"):
        files_of("#!/bin/sh\necho hi\n")


# --- every variant: static checks ----------------------------------------------------


@pytest.mark.parametrize(("stack", "role", "pool"), VARIANTS, ids=IDS)
def test_cloud_config_passes_the_cloud_init_schema(stack: str, role: str, pool: str, tmp_path: Path) -> None:
    cloud_init = tool("cloud-init")
    config = tmp_path / "user-data.yaml"
    config.write_text(render(params(stack, role, pool)))
    result = subprocess.run([cloud_init, "schema", "--config-file", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid schema" in result.stdout or "Valid cloud-config" in result.stdout


def python_programs(script: str) -> list[str]:
    """The Python the node script runs: `<<'PY'` heredoc bodies and `python3 -c '...'` programs."""
    programs = re.findall(r"<<'PY'[^\n]*\n(.*?)\nPY\n", script, re.S)
    programs += re.findall(r"python3 -c '\n([^']*)'", script)
    return programs


@pytest.mark.parametrize(("stack", "role", "pool"), VARIANTS, ids=IDS)
def test_the_compacted_script_keeps_its_python_intact(stack: str, role: str, pool: str) -> None:
    """The shipped script loses its indentation (EC2's 16 KiB), and its Python goes from 4
    spaces a level to 1: every program is still the template's, syntax tree for syntax tree."""
    script = files_of(render(params(stack, role, pool)))[NODE_SCRIPT]
    programs = python_programs(script)
    assert len(programs) >= 3
    template = "".join((TEMPLATES / name).read_text() for name in
                       ("node/swarmstack-node.sh.j2", "aws/adapter.sh.j2"))
    originals = {ast.dump(ast.parse(program)) for program in python_programs(template)}
    for program in programs:
        assert ast.dump(ast.parse(program)) in originals, program
    assert any(line.startswith(" ") for program in programs for line in program.splitlines())
    assert not [line for line in script.splitlines() if line.startswith("  ") and "PY" not in line
                and not any(line in program for program in programs)]


SETTING = r"readonly ([A-Z][A-Z0-9_]*)="
"""A line of the settings block: `readonly NAME=value`."""
HEADER = "# swarmstack-node: converges one "
"""The header comment that names the node (its role, cluster and pool)."""


def body(script: str) -> str:
    """The script without its settings block and header: the part every node of a cloud runs alike."""
    return "\n".join(line for line in script.splitlines()
                     if not (re.match(SETTING, line) or line.startswith(HEADER)))


def setting_names(script: str) -> list[str]:
    """The names the settings block sets, in order."""
    return re.findall("^" + SETTING, script, re.M)


def scripts_of(variant: tuple[str, str, str]) -> dict[str, str]:
    """The variant's rendered scripts (files starting `#!`), by path."""
    return {path: text for path, text in files_of(render(params(*variant))).items() if text.startswith("#!")}


# shellcheck takes about 1.5 s of CPU a script, and the variants' scripts are one body with
# different settings (test_every_variant_runs_the_same_script_with_its_own_settings): it reads
# a manager's (the pools' trusted labels, the Docker API on) and a worker's (its pool's labels,
# the API off), which between them give every setting each form it takes. Every variant is
# parsed by bash.
SHELLCHECKED = [("prod-aws", "manager", "managers"), ("prod-aws", "worker", "batch")]


@pytest.mark.parametrize(("stack", "role", "pool"), SHELLCHECKED, ids=[f"{s}-{r}-{p}" for s, r, p in SHELLCHECKED])
def test_every_script_is_shellcheck_clean(stack: str, role: str, pool: str, tmp_path: Path) -> None:
    shellcheck = tool("shellcheck")
    scripts = scripts_of((stack, role, pool))
    assert NODE_SCRIPT in scripts
    for path, text in scripts.items():
        file = tmp_path / Path(path).name
        file.write_text(text)
        result = subprocess.run([shellcheck, "--severity=style", str(file)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}:\n{result.stdout}"
        assert "set -euo pipefail" in text


def test_every_variant_runs_the_same_script_with_its_own_settings(tmp_path: Path) -> None:
    assert set(SHELLCHECKED) <= set(VARIANTS)
    first = scripts_of(SHELLCHECKED[0])
    checked = {path: body(text) for path, text in first.items()}
    names = {path: setting_names(text) for path, text in first.items()}
    assert len(checked[NODE_SCRIPT]) > 30_000  # the settings are a few lines of it
    for variant in VARIANTS:
        scripts = scripts_of(variant)
        assert {path: body(text) for path, text in scripts.items()} == checked, variant
        assert {path: setting_names(text) for path, text in scripts.items()} == names, variant  # no setting of its own
        for path, text in scripts.items():
            file = tmp_path / Path(path).name
            file.write_text(text)
            parsed = subprocess.run(["bash", "-n", str(file)], capture_output=True, text=True)
            assert parsed.returncode == 0, f"{variant} {path}: {parsed.stderr}"


@pytest.mark.parametrize(("stack", "role", "pool"), VARIANTS, ids=IDS)
def test_daemon_json_and_units(stack: str, role: str, pool: str) -> None:
    p = params(stack, role, pool)
    files = files_of(render(p))
    daemon = json.loads(files[DAEMON_BASE])
    assert "live-restore" not in daemon, "live-restore is incompatible with swarm mode"
    assert daemon["no-new-privileges"] is True and daemon["userland-proxy"] is False
    assert daemon["metrics-addr"] == "127.0.0.1:9323"
    assert daemon["log-driver"] == "awslogs"
    assert daemon["log-opts"]["awslogs-group"] == f"/swarmstack/{p.cluster}/containers"
    assert daemon["log-opts"]["tag"] == "{{.Name}}/{{.ID}}"
    assert daemon["log-opts"]["awslogs-region"] == p.region
    # No hosts in daemon.json (they clash with the unit's -H fd://), no hard-coded dockerd:
    # the node adds the TLS listener to the distribution's own ExecStart at boot.
    assert "hosts" not in daemon and "tlsverify" not in daemon
    assert not any("docker.service.d" in path for path in files)
    script = files[NODE_SCRIPT]
    assert f"readonly DOCKER_API={'true' if p.docker_api else 'false'}" in script
    assert '"ExecStart=$exec -H tcp://0.0.0.0:$DOCKER_API_PORT"' in script
    cleanup = "/etc/systemd/system/swarmstack-cleanup.timer"
    assert (cleanup in files) == (role == "manager")
    assert "swarmstack-prune" not in "".join(files), "AWS prunes through an SSM association, not a timer"


@pytest.mark.parametrize(("stack", "role", "pool"), VARIANTS, ids=IDS)
def test_no_one_shot_chain_can_strand_a_node(stack: str, role: str, pool: str) -> None:
    """Issue 9, item 1: the configure unit had no restart and was RequiredBy docker; the
    bootstrap unit Required docker (Restart= does not fire on a failed dependency); cloud-init
    ran the install once. Now one converge service does every step, systemd reruns it without
    a start limit, and nothing depends on another unit succeeding."""
    p = params(stack, role, pool)
    files = files_of(render(p))
    units = {path: text for path, text in files.items() if path.startswith("/etc/systemd/system/")}
    for path, text in units.items():
        assert "Requires=" not in text and "RequiredBy=" not in text and "BindsTo=" not in text, path
    converge = units["/etc/systemd/system/swarmstack-converge.service"]
    assert f"ExecStart={NODE_SCRIPT} converge" in converge
    assert "Restart=on-failure" in converge and f"RestartSec={p.retry_seconds}s" in converge
    assert "StartLimitIntervalSec=0" in converge
    assert "WantedBy=multi-user.target" in converge  # and so after every reboot
    timer = units["/etc/systemd/system/swarmstack-converge.timer"]
    assert f"OnUnitInactiveSec={p.converge_interval_seconds}s" in timer
    document = yaml.safe_load(render(p))
    assert document["runcmd"] == [["systemctl", "daemon-reload"], [
        "systemctl", "enable", "--now", "--no-block", "swarmstack-converge.service", "swarmstack-converge.timer",
        "swarmstack-watch.timer", *(["swarmstack-cleanup.timer"] if role == "manager" else [])]]


def test_the_fullest_ec2_user_data_keeps_room_and_its_files_cost_two_spaces_a_line() -> None:
    """EC2 counts the gzipped bytes (16 KiB). The fullest: a prod manager with a backup store
    and a cluster name of 28 characters, the most `swarmstack:cluster` takes. The leaving
    mark (issue 13) took 173 bytes of the 75 it had; each file's lines now cost 2 spaces of
    YAML, not 3 (79 bytes), and the units' descriptions are shorter. Zopfli would pack it 3 %
    tighter, but its bytes differ across platforms (google/zopfli#20): a deploy from a laptop
    would roll every node. The node script's Python ships at 1 space a level (33 bytes)."""
    manager = dataclasses.replace(params("prod-aws", "manager", "managers"),
                                  backup_store="s3://swarmstack-prod-backups-123456789012-eu-west-1")
    # a name as a user would write one (the deploy test's): 28 a's packed 32 bytes tighter
    text = render(manager).replace("prod", "a-cluster-name-of-28-chars-x")
    packed = base64.b64decode(userdata.encode(text))
    assert gzip.decompress(packed).decode() == text
    assert len(packed) <= EC2_USER_DATA_LIMIT - 32, f"{EC2_USER_DATA_LIMIT - len(packed)} bytes to spare"
    assert "\n-\n path: /usr/local/sbin/swarmstack-node\n" in text
    assert " content: |\n  #!/usr/bin/env bash\n" in text


@pytest.mark.parametrize(("stack", "role", "pool"), VARIANTS, ids=IDS)
def test_user_data_fits_ec2_and_carries_no_secret(stack: str, role: str, pool: str) -> None:
    text = render(params(stack, role, pool))
    encoded = userdata.encode(text)
    packed = base64.b64decode(encoded)
    assert len(packed) <= EC2_USER_DATA_LIMIT
    assert gzip.decompress(packed).decode() == text
    assert userdata.encode(text) == encoded
    for secret in ("PRIVATE KEY", "aws_secret_access_key", "AKIA"):
        assert secret not in text
    assert not re.search(r"SWMTKN-1-[0-9a-z]{20,}", text), "a join token in the user data"


def test_the_restore_tool_leaves_the_user_data_and_its_sha256_stays(tmp_path: Path) -> None:
    """EC2's 16 KiB: `cmd_restore`, `cmd_backup` and what only they use are a separate tool (the stack writes it
    to the backup bucket), shellcheck-clean on its own and sourced into the script; the
    script carries its sha256. Azure keeps it in the custom data, as its own file."""
    from userdata.render import RESTORE_TOOL_PATH, restore_tool, restore_tool_key, restore_tool_sha256

    bucket = "s3://swarmstack-prod-backups-123456789012-eu-west-1"
    manager = dataclasses.replace(params("prod-aws", "manager", "managers"), backup_store=bucket)
    files = files_of(render(manager))
    script, tool = files[NODE_SCRIPT], restore_tool(manager)
    assert set(files) & {RESTORE_TOOL_PATH} == set()
    for function in ("cmd_restore() {", "restore_files() {", "cmd_backup() {", "engine_stopped() {", "backup_put() {"):
        assert function in tool and function not in script
    assert f"readonly RESTORE_SHA256={restore_tool_sha256(manager)}\n" in script
    assert f"readonly RESTORE_TOOL={bucket}/{restore_tool_key(tool)}\n" in script
    assert "readonly RESTORE_SHA256=''\n" in files_of(render(params("prod-aws", "worker", "general")))[NODE_SCRIPT]
    with pytest.raises(ValueError, match="only a manager with a backup store"):
        restore_tool(params("prod-aws", "manager", "managers"))
    # inlined, it would cost the user data what it saves now
    inlined = render(manager).replace("readonly RESTORE_SHA256=", tool.replace("\n", "\n      ") + "readonly RESTORE_SHA256=")
    assert len(base64.b64decode(userdata.encode(render(manager)))) < len(gzip.compress(inlined.encode(), 9, mtime=0))
    shellcheck = tool_path("shellcheck")
    (tmp_path / "restore.sh").write_text(tool)
    result = subprocess.run([shellcheck, "--severity=style", str(tmp_path / "restore.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    azure = NodeUserData(cluster="prod", cloud="azure", role="manager", pool="managers", generation=GENERATION,
                         region="westeurope", labels={}, docker_api=False, vault_name="prod-abc123",
                         table_endpoint="https://prodabc123.table.core.windows.net/", identity_client_id="0" * 8 + "-0000-0000-0000-" + "0" * 12,
                         backup_store="https://prodabc123.blob.core.windows.net/backups")
    azure_files = files_of(render(azure))
    assert azure_files[RESTORE_TOOL_PATH] == restore_tool(azure)
    assert f"readonly RESTORE_SHA256={restore_tool_sha256(azure)}\n" in azure_files[NODE_SCRIPT]
    # Each cloud's tool reads its own backups (backup_latest), which the node script no longer carries.
    for rendered, cloud_script in ((tool, script), (restore_tool(azure), azure_files[NODE_SCRIPT])):
        assert "backup_latest() {" in rendered and "backup_latest() {" not in cloud_script
    (tmp_path / "restore-azure.sh").write_text(restore_tool(azure))
    result = subprocess.run([shellcheck, "--severity=style", str(tmp_path / "restore-azure.sh")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_encode_refuses_oversized_user_data() -> None:
    noise = base64.b64encode(os.urandom(20000)).decode()
    with pytest.raises(ValueError, match="EC2 allows 16384"):
        userdata.encode("#cloud-config\n# " + noise + "\n")


def test_script_settings_default_to_production_and_are_overridable() -> None:
    script = files_of(render(params("prod-aws", "manager", "managers")))[NODE_SCRIPT]
    assert 'readonly IMDS="${SWARMSTACK_IMDS_ENDPOINT:-http://169.254.169.254}"' in script
    assert f'readonly STATE_DIR="${{SWARMSTACK_STATE_DIR:-{STATE_DIR}}}"' in script
    assert "export AWS_ENDPOINT_URL" not in script, "production uses the regional endpoints"
    with_endpoint = files_of(render(dataclasses.replace(params("prod-aws", "manager", "managers"),
                                                        aws_endpoint_url="http://10.0.0.5:4566")))[NODE_SCRIPT]
    assert 'export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://10.0.0.5:4566}"' in with_endpoint
    assert f"readonly STORE_PREFIX=/swarmstack/prod/{GENERATION}" in script
    assert "readonly TLS_PREFIX=/swarmstack/prod/tls" in script
    assert f"readonly KEY_ID={KEY}" in script
    assert 'put_parameter "$1" String false "$2"' in script and "swarm init" in script  # the election's create
    assert "--autolock" not in script


# --- snapshots ----------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "role", "pool"), VARIANTS, ids=IDS)
def test_snapshot(stack: str, role: str, pool: str) -> None:
    text = render(params(stack, role, pool))
    snapshot = SNAPSHOTS / f"{stack}-{role}-{pool}.yaml"
    if os.environ.get("SWARMSTACK_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        snapshot.write_text(text)
    assert snapshot.exists(), f"no snapshot {snapshot.name}; regenerate (see this module's docstring)"
    assert text == snapshot.read_text(), f"{snapshot.name} changed; review, then regenerate (module docstring)"


def test_an_azure_node_needs_its_store_and_identity() -> None:
    with pytest.raises(ValueError, match=r"vault_name '' is not a Key Vault name.*"
                                         r"identity_client_id '' is not a GUID"):
        dataclasses.replace(base(), cloud="azure", region="westeurope", os="ubuntu", key_arn="")


def test_compact_refuses_to_ship_a_python_program_it_would_change() -> None:
    """The shipped Python is re-indented at 1 space a level (EC2's 16 KiB); a program laid out
    otherwise (2 spaces a level here: 2 and 4 would both become 1) must stop the render, not
    ship changed. A multi-line `python3 -c '` program that starts on its opening line would be
    flattened like bash: refused too (review of issue 13)."""
    from userdata.render import compact

    two_spaces = "#!/bin/bash\nf() {\n  python3 - <<'PY'\nif a:\n  b = 1\n  if c:\n    d = 2\nprint(b)\nPY\n}\n"
    with pytest.raises(ValueError, match="Python program of the node script"):
        compact(two_spaces)
    moved = "#!/bin/bash\nf() {\n  python3 -c '\nfor e in x:\n    if e:\n        print(e)\n        break\n' a\n}\n"
    assert "for e in x:\n if e:\n  print(e)\n  break\n' a" in compact(moved)
    with pytest.raises(ValueError, match="must start on its own line"):
        compact("#!/bin/bash\nf() {\n  python3 -c 'import sys\n    print(1)\n'\n}\n")
