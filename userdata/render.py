"""Render one node's cloud-init user data from the templates in `templates/`.

The output is a single `#cloud-config` document: every script, unit and config file
the node needs is in `write_files`, and `runcmd` only enables and starts the units:
`swarmstack-converge.service` installs Docker, configures it and joins the swarm,
and systemd reruns it until the node converges. One node script for both clouds:
the core (`templates/node/`) and a small per-cloud adapter (`templates/<cloud>/`).
Rendering is pure and deterministic; `jinja2.StrictUndefined` makes a value missing
from the parameters an error instead of an empty string in a script.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import functools
import gzip
import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from components.common.managers import MANAGER_POOL
from components.common.namespace import tls_prefix
from components.common.node_paths import (
    DAEMON_BASE,
    NODE_SCRIPT,
    REGISTRY_TOOL,
    RESTORE_TOOL_PATH,
    UNIT_DIR,
    template_paths,
)
from components.common.prune import prune_commands
from swarmstack.config.cron import parse_cron, to_systemd
from userdata.params import NodeUserData, RegistryTool

TEMPLATES = Path(__file__).parent / "templates"
# EC2 refuses user data over 16 KiB (before base64); cloud-init reads gzip itself.
EC2_USER_DATA_LIMIT = 16384
RESTORE_TEMPLATE = "node/restore.sh.j2"
REGISTRY_TEMPLATE = "node/registry.sh.j2"
REGISTRY_REFRESH_MINUTES = 30
"""How often a node runs the registry tool: install the helper again if it went, and (the
leader) re-send fresh credentials to the services. ECR's tokens last 12 hours, the token
`az acr login` gets 3 hours: every 30 minutes leaves room for several failed runs. (State
Manager's shortest rate is 30 minutes.)"""
RESTORE_TOOL_PREFIX = "tools/restore-"
"""Where the AWS backup bucket keeps the restore tools: one object per version, named by its
sha256 (`restore_tool_key`), so a manager launched before a `pulumi up` that changed the
tool still finds its own (`components/aws/backup.py` writes them)."""


@dataclass(frozen=True)
class NodeFile:
    """One file that cloud-init writes on the node."""

    path: str
    """Absolute path on the node."""
    mode: str
    """Octal permissions, e.g. `0644`."""
    template: str
    """Template that renders it, relative to `templates/`."""
    content: str = ""
    """The rendered content (always ends with a newline)."""


def environment() -> jinja2.Environment:
    """The one Jinja environment: strict, no autoescape (this is YAML and shell, not HTML)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters["shq"] = lambda value: shlex.quote(str(value))
    def tojson(value: Any, indent: int | None = None) -> str:
        # Plain JSON (this is not HTML); a missing value fails by its name, not as a TypeError.
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        return json.dumps(value, indent=indent, sort_keys=True)

    env.filters["tojson"] = tojson
    return env


_environment = functools.cache(environment)


ENGINE_PACKAGES = {"amazonlinux": ("docker",), "ubuntu": ("docker.io",)}
AZURE_CUSTOM_DATA_LIMIT = 65535
"""Azure takes at most 64 KiB of custom data before base64."""


def _tool_context(params: NodeUserData) -> dict[str, Any]:
    context = dataclasses.asdict(params)
    context.update(registry_refresh=f"{REGISTRY_REFRESH_MINUTES}min", tls_prefix=tls_prefix(params.cluster),
                   state_prefix=params.state_prefix, vault_url=params.vault_url,
                   prune_calendar=to_systemd(parse_cron(params.prune_schedule)),
                   backup_calendar=to_systemd(parse_cron(params.backup_schedule)),
                   prune_commands=prune_commands(params.prune_until, params.prune_volumes),
                   engine_packages=list(ENGINE_PACKAGES[params.os]), manager_pool=MANAGER_POOL,
                   **template_paths())
    return context


def _context(params: NodeUserData) -> dict[str, Any]:
    tool = restore_tool(params) if _restores(params) else ""
    return _tool_context(params) | {"restore_sha256": _sha256(tool) if tool else "",
                                    "restore_tool_key": restore_tool_key(tool) if tool else ""}


def _restores(params: NodeUserData) -> bool:
    return params.role == "manager" and bool(params.backup_store)


def restore_tool(params: NodeUserData) -> str:
    """The restore tool of a manager with a backup store: `cmd_restore`, `cmd_backup` and what
    only they use, which `swarmstack-node restore` and `backup` source
    (`templates/node/restore.sh.j2`), compacted like the node script. Not in the user data
    (EC2 takes 16 KiB): AWS keeps it in the backup bucket (`restore_tool_key`), Azure in the
    custom data (RESTORE_TOOL_PATH). Pure."""
    if not _restores(params):
        raise ValueError("only a manager with a backup store restores: no restore tool for "
                         f"a {params.role} with backup_store {params.backup_store!r}")
    text = _environment().get_template(RESTORE_TEMPLATE).render(_tool_context(params))
    return compact(text).rstrip("\n") + "\n"


def registry_tool(tool: RegistryTool) -> str:
    """The registry tool (`templates/node/registry.sh.j2`): the Docker credential helper that
    answers with the node's own identity, and the leader's refresh of the services'
    registry credentials. Azure's custom data carries it; on AWS a State Manager
    association writes and runs it. Pure."""
    context = dataclasses.asdict(tool) | template_paths() | {"registry_refresh": f"{REGISTRY_REFRESH_MINUTES}min"}
    return _environment().get_template(REGISTRY_TEMPLATE).render(context).rstrip("\n") + "\n"


def restore_tool_key(tool: str) -> str:
    """The backup bucket's key for the restore tool TOOL: named by its sha256 (16 hex digits),
    so that each version has its own object and none overwrites another. Pure."""
    return f"{RESTORE_TOOL_PREFIX}{_sha256(tool)[:16]}.sh"


def restore_tool_sha256(params: NodeUserData) -> str:
    """The restore tool's sha256 (hex), which the node script carries and checks. Pure."""
    return _sha256(restore_tool(params))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def node_files(params: NodeUserData) -> list[NodeFile]:
    """The files of one node, in the order cloud-init writes them."""
    if not (TEMPLATES / params.cloud).is_dir():
        known = ", ".join(sorted(p.name for p in TEMPLATES.iterdir()
                                 if p.is_dir() and p.name not in ("common", "node")))
        raise ValueError(f"no user data templates for cloud {params.cloud!r}; templates exist for: {known}")
    files = [
        NodeFile(NODE_SCRIPT, "0755", "node/swarmstack-node.sh.j2"),
        NodeFile(DAEMON_BASE, "0644", "node/daemon.json.j2"),
        NodeFile(f"{UNIT_DIR}/swarmstack-converge.service", "0644", "common/swarmstack-converge.service.j2"),
        NodeFile(f"{UNIT_DIR}/swarmstack-converge.timer", "0644", "common/swarmstack-converge.timer.j2"),
        NodeFile(f"{UNIT_DIR}/swarmstack-watch.service", "0644", "common/swarmstack-watch.service.j2"),
        NodeFile(f"{UNIT_DIR}/swarmstack-watch.timer", "0644", "common/swarmstack-watch.timer.j2"),
    ]
    if params.role == "manager":
        files += [
            NodeFile(f"{UNIT_DIR}/swarmstack-cleanup.service", "0644", "common/swarmstack-cleanup.service.j2"),
            NodeFile(f"{UNIT_DIR}/swarmstack-cleanup.timer", "0644", "common/swarmstack-cleanup.timer.j2"),
        ]
    if params.backup_store:
        files += [
            NodeFile(f"{UNIT_DIR}/swarmstack-backup.service", "0644", "common/swarmstack-backup.service.j2"),
            NodeFile(f"{UNIT_DIR}/swarmstack-backup.timer", "0644", "common/swarmstack-backup.timer.j2"),
        ]
    if params.prune:
        files += [
            NodeFile(f"{UNIT_DIR}/swarmstack-prune.service", "0644", "common/swarmstack-prune.service.j2"),
            NodeFile(f"{UNIT_DIR}/swarmstack-prune.timer", "0644", "common/swarmstack-prune.timer.j2"),
        ]
    if params.cloud == "azure" and _restores(params):
        files.append(NodeFile(RESTORE_TOOL_PATH, "0644", RESTORE_TEMPLATE))
    if params.registry:
        files += [
            NodeFile(REGISTRY_TOOL, "0755", REGISTRY_TEMPLATE),
            NodeFile(f"{UNIT_DIR}/swarmstack-registry.service", "0644", "common/swarmstack-registry.service.j2"),
            NodeFile(f"{UNIT_DIR}/swarmstack-registry.timer", "0644", "common/swarmstack-registry.timer.j2"),
        ]
    if params.cloud == "azure":
        files.append(NodeFile(f"{UNIT_DIR}/swarmstack-health.service", "0644", "azure/swarmstack-health.service.j2"))
        if params.logging:
            files.append(NodeFile(f"{UNIT_DIR}/swarmstack-docker-events.service", "0644",
                                  "azure/swarmstack-docker-events.service.j2"))
    env = _environment()
    context = _context(params)
    rendered = []
    tool = params.registry_tool()
    for file in files:
        if file.template == RESTORE_TEMPLATE:
            rendered.append(dataclasses.replace(file, content=restore_tool(params)))
            continue
        if file.template == REGISTRY_TEMPLATE and tool is not None:
            rendered.append(dataclasses.replace(file, content=registry_tool(tool)))
            continue
        text = env.get_template(file.template).render(context)
        if file.path == NODE_SCRIPT:
            text = compact(text)
        rendered.append(dataclasses.replace(file, content=text.rstrip("\n") + "\n"))
    return rendered


_HEREDOC = re.compile(r"(?<!<)<<-?(['\"]?)([A-Z_][A-Z0-9_]*)\1")
"""A heredoc as the templates write one: `<<'PY'`, `<<EOF` (no space, an upper-case word; a
shift such as `1 << n` is none)."""


def _python_indent(line: str) -> str:
    """A line of the template's Python (4 spaces a level) at 1 space a level, and a line
    aligned otherwise (a continuation, inside brackets, where any indentation will do) at 1:
    the same program (`_same_python` checks), about 33 bytes less gzipped for the largest
    manager."""
    text = line.lstrip(" ")
    indent = len(line) - len(text)
    return " " * (indent // 4 if indent % 4 == 0 else 1) + text


def _same_python(template: list[str], shipped: list[str]) -> None:
    """Raises unless the re-indented program parses to the template's syntax tree."""
    _same_program("\n".join(template), "\n".join(shipped))


@functools.lru_cache(maxsize=64)
def _same_program(template: str, shipped: str) -> None:
    """`_same_python` of two program texts, checked once per process: each group's node
    script carries the same few programs (two thirds of the renders' time went here on a
    stack of 10 pools). Only a pass is remembered: a refusal raises each time."""
    try:
        same = ast.dump(ast.parse(template)) == ast.dump(ast.parse(shipped))
    except SyntaxError as err:
        raise ValueError(f"a Python program of the node script does not parse: {err}") from None
    if not same:
        raise ValueError("re-indenting a Python program of the node script changed it:\n" + template)


def compact(script: str) -> str:
    """The node script as it ships (EC2 takes only 16 KiB of gzipped user data): its header
    and shellcheck directives kept (without their reasons); every other full-line comment, every blank line and
    every line's indentation dropped (they explain and lay out the template,
    `templates/node/`). Heredoc bodies are kept exactly, but the Python ones (`<<'PY'` and
    multi-line `python3 -c '...'` programs) at 1 space a level, not the template's 4: the same
    program, which it checks: it raises when a program's syntax tree would change, or when a
    multi-line `python3 -c '` program does not start on a line of its own. Pure."""
    lines = script.splitlines()
    header = 0
    while header < len(lines) and lines[header].startswith("#"):
        header += 1
    kept = lines[:header]
    until: str | None = None
    program: list[str] = []  # the Python program being copied, as the template has it
    for line in lines[header:]:
        if until is not None:
            # A heredoc ends at its word; a single-quoted program at its first quote (the
            # shell's single quotes hold no quote).
            ends = line.strip() == until if until != "'" else "'" in line
            python = until in ("PY", "'")
            kept.append(line.strip() if ends and until != "'" else _python_indent(line) if python else line)
            if python and not (ends and until == "PY"):
                program.append(line.split("'", 1)[0] if ends else line)
            if ends:
                if python:
                    _same_python(program, [_python_indent(p) for p in program])
                until, program = None, []
            continue
        text = line.strip()
        if not text or (text.startswith("#") and "shellcheck " not in text):
            continue
        if text.startswith("# shellcheck "):  # the directive, not its reason
            text = text.split(" # ", 1)[0]
        if re.search(r"python3 -c '[^']*$", text) and not text.endswith("python3 -c '"):
            raise ValueError(f"a multi-line `python3 -c '` program must start on its own line: {text}")
        kept.append(text)
        heredoc = _HEREDOC.search(text)
        if heredoc:
            until = heredoc.group(2)
        elif text.endswith("python3 -c '"):
            until = "'"
    return "\n".join(kept) + "\n"


def units_of(params: NodeUserData) -> list[str]:
    """The units cloud-init enables and starts, in order."""
    units = ["swarmstack-converge.service", "swarmstack-converge.timer", "swarmstack-watch.timer"]
    if params.role == "manager":
        units.append("swarmstack-cleanup.timer")
    if params.backup_store:
        units.append("swarmstack-backup.timer")
    if params.prune:
        units.append("swarmstack-prune.timer")
    if params.registry:
        units.append("swarmstack-registry.timer")
    if params.cloud == "azure":
        units.append("swarmstack-health.service")
        if params.logging:
            units.append("swarmstack-docker-events.service")
    return units


def render(params: NodeUserData) -> str:
    """The full cloud-init user data of one node (text, not base64); deterministic."""
    files = node_files(params)
    context = _context(params) | {"files": files, "units": units_of(params)}
    text = _environment().get_template("node/cloud-config.yaml.j2").render(context)
    _check_round_trip(text, files)
    return text


def _check_round_trip(text: str, files: list[NodeFile]) -> None:
    """Refuse to return YAML that would not give back exactly the files we rendered."""
    written = files_of(text)
    for file in files:
        if written.get(file.path) != file.content:
            raise ValueError(f"rendering {file.path} did not survive the YAML round trip")


def files_of(user_data: str) -> dict[str, str]:
    """The `write_files` of rendered user data, path to content (for tests and the harness)."""
    if not user_data.startswith("#cloud-config\n"):
        raise ValueError("not a #cloud-config document")
    document = yaml.load(user_data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {entry["path"]: entry["content"] for entry in document.get("write_files", [])}


class UserDataTooLarge(ValueError):
    """Rendered user data past what the cloud takes (`LIMITS`)."""


LIMITS = {"aws": ("EC2", EC2_USER_DATA_LIMIT), "azure": ("Azure", AZURE_CUSTOM_DATA_LIMIT)}
"""What each cloud takes of the user data / custom data, after base64 decoding."""


def encode(user_data: str, cloud: str = "aws") -> str:
    """Base64 of gzip of the user data, for a launch template or a scale set's custom data
    (cloud-init un-gzips it on either cloud).

    Deterministic (no timestamp in the gzip header; zlib's level 9, whose output has not
    changed across zlib 1.2 and 1.3: the launch template changes only with the text). Not
    zopfli, about 3 % tighter: its floating-point cost model gives other bytes on other
    platforms (google/zopfli#20), and one deploy from a laptop would then roll every node.
    Raises when even compressed it is over the cloud's limit (EC2: 16 KiB; Azure: 65535 bytes).
    """
    name, limit = LIMITS[cloud]
    packed = gzip.compress(user_data.encode(), compresslevel=9, mtime=0)
    if len(packed) > limit:
        raise UserDataTooLarge(f"user data is {len(packed)} bytes gzipped; {name} allows {limit}")
    return base64.b64encode(packed).decode()
