"""`swarmstack context STACK --outputs FILE`: a docker context for the stack's TLS Docker API.

FILE is what `pulumi stack output --json --show-secrets` prints. The stack exports
`dockerHost` (`tcp://<load balancer>:2376`) and `clientTls` (the admin bundle:
`ca.pem`, `cert.pem`, `key.pem`), both from `components/<cloud>/cluster.py`. The
bundle is written 0600 in a 0700 directory (`$DOCKER_CONFIG` or `~/.docker`, under
`swarmstack/<stack>/`), and the real `docker context create` (or `update`, when the
context exists) points `swarmstack-<stack>` at it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BUNDLE = ("ca.pem", "cert.pem", "key.pem")
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
HOW = "write it with `pulumi stack output --json --show-secrets > FILE`"


class ContextError(ValueError):
    """A problem with the outputs file or the docker CLI, said in one line."""


def context_name(stack: str) -> str:
    return f"swarmstack-{stack}"


def read_outputs(path: Path) -> tuple[str, dict[str, str]]:
    """`dockerHost` and the `clientTls` bundle of an outputs file, checked."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ContextError(f"{path}: cannot read the outputs file ({err.strerror}); {HOW}") from None
    try:
        outputs: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise ContextError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); {HOW}") from None
    if not isinstance(outputs, dict):
        raise ContextError(f"{path}: must be a JSON object of stack outputs, not {type(outputs).__name__}; {HOW}")
    host = _docker_host(path, outputs.get("dockerHost"))
    bundle = outputs.get("clientTls")
    if bundle is None:
        raise ContextError(f"{path}: clientTls = (missing): the stack exports no admin TLS bundle; "
                           "set dockerApi.enabled: true, run pulumi up, then write the outputs again")
    if bundle == "[secret]":
        raise ContextError(f"{path}: clientTls = \"[secret]\": the bundle is a secret output; "
                           "write the file with --show-secrets")
    if not isinstance(bundle, dict):
        raise ContextError(f"{path}: clientTls = {_shown(bundle)}: must be an object with {', '.join(BUNDLE)}")
    checked: dict[str, str] = {}
    for name, marker, what in (("ca.pem", "CERTIFICATE", "a PEM certificate (the cluster's CA)"),
                               ("cert.pem", "CERTIFICATE", "a PEM certificate (the admin's)"),
                               ("key.pem", "PRIVATE KEY", "a PEM private key")):
        value = bundle.get(name)
        if not isinstance(value, str) or not re.search(
                rf"-----BEGIN [A-Z ]*{marker}-----\n.+\n-----END [A-Z ]*{marker}-----", value, re.DOTALL):
            raise ContextError(f"{path}: clientTls.{name} = {_shown(value)}: must be {what}")
        checked[name] = value if value.endswith("\n") else value + "\n"
    return host, checked


def _docker_host(path: Path, value: Any) -> str:
    if value is None:
        raise ContextError(f"{path}: dockerHost = (missing): the stack exports no Docker API endpoint; "
                           "it needs dockerApi.enabled: true and a load balancer (loadBalancer.enabled: true)")
    parts = urlsplit(value) if isinstance(value, str) else None
    try:
        port = parts.port if parts is not None else None
    except ValueError:
        port = None
    if parts is None or parts.scheme != "tcp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ContextError(f"{path}: dockerHost = {_shown(value)}: must be tcp://HOST:PORT, "
                           "for example tcp://prod-lb-0123.elb.eu-west-1.amazonaws.com:2376")
    return f"tcp://{parts.netloc}"


def _shown(value: Any) -> str:
    if value is None:
        return "(missing)"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def tls_dir(stack: str, base: str | None = None) -> Path:
    """Where the bundle goes: `base`, or `$DOCKER_CONFIG`/`~/.docker` + `swarmstack/<stack>`."""
    if base:
        return Path(base).expanduser()
    config = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(config) / "swarmstack" / stack


def write_bundle(folder: Path, bundle: dict[str, str]) -> dict[str, Path]:
    """The bundle's files, 0600 in a 0700 folder, each replaced whole (never half-written)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    written = {}
    for name in BUNDLE:
        target = folder / name
        temporary = folder / f".{name}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(bundle[name])
        os.chmod(temporary, 0o600)
        temporary.replace(target)
        written[name] = target
    return written


def create_context(stack: str, outputs: Path, docker: str | None = None, home: str | None = None) -> list[str]:
    """Create or update `swarmstack-<stack>`; the lines to print."""
    if not STACK_NAME.match(stack):
        raise ContextError(f"stack {stack!r}: a context name takes letters, digits, '_', '.' and '-'")
    host, bundle = read_outputs(outputs)
    client = docker or shutil.which("docker")
    if client is None or not os.access(client, os.X_OK):
        raise ContextError(f"docker = {client or '(not on PATH)'}: the docker CLI is needed; install it "
                           "or name it with --docker PATH")
    folder = tls_dir(stack, home).resolve()
    if re.search(r"[,=\"]", str(folder)):
        raise ContextError(f"{folder}: docker's --docker option cannot take a path with ',', '=' or '\"'; "
                           "choose another folder with --dir")
    files = write_bundle(folder, bundle)
    name = context_name(stack)
    exists = subprocess.run([client, "context", "inspect", name], capture_output=True, text=True).returncode == 0
    endpoint = f"host={host},ca={files['ca.pem']},cert={files['cert.pem']},key={files['key.pem']}"
    command = [client, "context", "update" if exists else "create", name,
               "--description", f"swarmstack stack {stack} (TLS Docker API, admin bundle)", "--docker", endpoint]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ContextError(f"docker context {'update' if exists else 'create'} {name}: "
                           f"{detail[-1] if detail else f'exited {result.returncode}'}")
    return [
        f"docker context {name} {'updated' if exists else 'created'}: {host}, TLS bundle in {folder} (files 0600)",
        f"Use it:  docker --context {name} node ls",
        f"or make it the default:  docker context use {name}",
    ]
