"""From a stack's raw config to a validated `StackConfig`, or every problem at once.

Used by the Pulumi program (config from the engine) and by the offline toolkit
(config read from `stacks/Pulumi.<stack>.yaml`): both give the same messages.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from swarmstack.config import rules
from swarmstack.config.model import ClusterConfig
from swarmstack.config.problems import MISSING, ConfigError, Problem

STACKS_DIR = "stacks"
REGION_KEYS = {"aws": "aws:region", "azure": "azure-native:location"}
OWN_KEYS = {"swarmstack:cluster", "swarmstack:dockerApiCaKey"}

AWS_REGION_NAME = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]+")
AWS_OTHER_PARTITIONS = (("cn-", "in the aws-cn partition (amazonaws.com.cn)"),
                        ("eusc-", "in the aws-eusc partition (amazonaws.eu)"),
                        ("us-iso", "in an isolated partition"))
"""Region prefixes of the partitions whose endpoints do not end in amazonaws.com: the nodes'
own client (`aws_api`), the roles' `kms:ViaService` conditions and the registry's host all
name `<service>.<region>.amazonaws.com`."""


def aws_region_problem(region: str) -> str | None:
    """Why swarmstack cannot deploy to AWS region `region`, or None. Pure."""
    if not AWS_REGION_NAME.fullmatch(region):
        why = "not an AWS region name (like eu-west-1 or us-gov-west-1)"
    else:
        why = next((text for prefix, text in AWS_OTHER_PARTITIONS if region.startswith(prefix)), "")
    if not why:
        return None
    return (f"{why}; swarmstack deploys to the regions of the aws and aws-us-gov partitions, "
            "whose endpoints end in amazonaws.com")

# Messages for constraints whose pydantic wording would not tell the user what is valid.
_HINTS = {
    "managers.count": "must be 1, 3, 5 or 7 (an odd count keeps a raft quorum)",
    "diskGiB": "must be a whole number of GiB from 20 to 1024",
    "count": "must be a whole number from 0 to 1000",
    "name": "must be lowercase letters, digits and dashes, starting with a letter",
    "cloud": "must be aws or azure",
    "nat": "must be none, single or perZone",
    "zones": "must be a whole number of zones from 1 to 6",
    "port": "must be a port number from 1 to 65535",
    "protocol": "must be tcp or udp",
    "ca": "must be generated or provided",
    "backup.retentionDays": "must be a whole number of days from 1 to 3650",
    "backup.enabled": "must be true or false (unset: on for production stacks)",
    "metrics.diskAlarmPercent": "must be a whole percentage from 50 to 99",
    "metrics.memoryAlarmPercent": "must be a whole percentage from 50 to 99",
    "registry.keepImages": "must be a whole number of images from 1 to 1000",
    "sharedVolumes.enabled": "must be true or false",
    "sharedVolumes.throughputMode": "must be elastic or bursting",
    "sharedVolumes.quotaGiB": "must be a whole number of GiB from 100 (the premium share minimum) to 102400",
}


@dataclass(frozen=True)
class StackConfig:
    """Everything the program needs from a stack: the cluster and where it goes."""

    stack: str
    source: str
    cluster: ClusterConfig
    region: str


EXAMPLES_DIR = "examples"
"""`stacks/examples/`: example stacks, named `examples/<stack>` by the offline toolkit."""


def stack_name(stack: str) -> str:
    """The Pulumi stack name of a toolkit stack reference: `examples/brownfield-aws` is
    `brownfield-aws` (what it is called once copied to `stacks/`)."""
    return stack.rsplit("/", 1)[-1]


def stack_file(stack: str, root: Path | None = None) -> Path:
    """`stacks/Pulumi.<stack>.yaml`; for `<folder>/<stack>`, `stacks/<folder>/Pulumi.<stack>.yaml`."""
    folder, _, name = stack.rpartition("/")
    return (root or Path.cwd()) / STACKS_DIR / folder / f"Pulumi.{name}.yaml"


def read_stack_file(stack: str, root: Path | None = None) -> tuple[str, dict[str, Any]]:
    """The stack file's `config:` mapping, and the name to show in messages."""
    path = stack_file(stack, root)
    folder = stack.rpartition("/")[0]
    source = f"{STACKS_DIR}/{folder + '/' if folder else ''}{path.name}"
    if not path.exists():
        known = sorted(f"{folder + '/' if folder else ''}{p.name[len('Pulumi.'):-len('.yaml')]}"
                       for p in path.parent.glob("Pulumi.*.yaml"))
        message = f"no such stack file; stacks here: {', '.join(known) or 'none'}"
        raise ConfigError(source, [Problem("", MISSING, message)])
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(source, [Problem("", "(unreadable)", f"not valid YAML: {err}".replace("\n", " "))]) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(source, [Problem("", MISSING, "the file has no `config:` mapping")])
    return source, config


def validate(stack: str, source: str, config: dict[str, Any]) -> StackConfig:
    """Validate a stack's whole config mapping (keys like `swarmstack:cluster`)."""
    problems: list[Problem] = []
    for key in config:
        if key.startswith("swarmstack:") and key not in OWN_KEYS:
            problems.append(Problem(key, config[key], "unknown key; swarmstack reads "
                                    + " and ".join(sorted(OWN_KEYS))))
    raw = config.get("swarmstack:cluster", MISSING)
    if raw is MISSING or not isinstance(raw, dict):
        problems.append(Problem("swarmstack:cluster", raw, "must be a mapping with at least cloud and name"))
        raise ConfigError(source, problems)
    try:
        cluster = ClusterConfig.model_validate(raw)
    except ValidationError as err:
        problems.extend(_from_pydantic(err, raw))
        # Report the cross-key problems too, checked on the config with the bad values
        # taken out (so defaults stand in), unless they repeat a key already reported.
        repaired = _without(raw, [list(e["loc"]) for e in err.errors()])
        if repaired is not None:
            reported = {p.path for p in problems}
            problems.extend(p for p in rules.check(repaired, raw) if p.path not in reported)
        raise ConfigError(source, problems) from None
    problems.extend(rules.check(cluster, raw))
    region_key = REGION_KEYS[cluster.cloud]
    region = config.get(region_key)
    if not isinstance(region, str) or not region:
        problems.append(Problem(region_key, region if region is not None else MISSING,
                                f"a {cluster.cloud} stack needs its region: pulumi config set {region_key} <region>"))
    elif cluster.cloud == "aws" and (why := aws_region_problem(region)):
        problems.append(Problem(region_key, region, why))
    other = REGION_KEYS["azure" if cluster.cloud == "aws" else "aws"]
    if other in config:
        problems.append(Problem(other, config[other], f"is for the other cloud; this stack's cloud is {cluster.cloud}"))
    if problems:
        raise ConfigError(source, problems)
    return StackConfig(stack=stack, source=source, cluster=cluster, region=str(region))


def load_stack(stack: str, root: Path | None = None) -> StackConfig:
    """Read and validate `stacks/Pulumi.<stack>.yaml` (the offline toolkit's way in)."""
    source, config = read_stack_file(stack, root)
    return validate(stack_name(stack), source, config)


def _without(raw: dict[str, Any], locations: list[list[int | str]]) -> ClusterConfig | None:
    """The config with the values at `locations` removed, if that makes it valid."""
    import copy

    trimmed = copy.deepcopy(raw)
    for loc in locations:
        loc = [part for part in loc if not (isinstance(part, str) and part.startswith("function-"))]
        target: Any = trimmed
        try:
            for part in loc[:-1]:
                target = target[part]
            if loc == ["managers", "count"]:
                target["count"] = 1  # the count constraining nothing else, not the default 3
            elif isinstance(target, dict):
                target.pop(loc[-1], None)
            else:
                return None
        except (KeyError, IndexError, TypeError):
            return None
    try:
        return ClusterConfig.model_validate(trimmed)
    except ValidationError:
        return None


def _from_pydantic(err: ValidationError, raw: dict[str, Any]) -> list[Problem]:
    problems = []
    for item in err.errors():
        loc = [part for part in item["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
        path = _path(loc)
        kind = item["type"]
        value = item.get("input", MISSING) if kind != "missing" else MISSING
        if kind == "extra_forbidden":
            parent = _model_at(loc[:-1])
            valid = ", ".join(f.alias or n for n, f in parent.model_fields.items()) if parent else ""
            message = f"unknown key; valid keys here: {valid}"
        elif kind == "missing":
            message = "is required"
        elif kind == "value_error":
            message = str(item["ctx"]["error"]) if "ctx" in item else item["msg"]
        else:
            message = _hint(path) or _plain(item)
        problems.append(Problem(path, value, message))
    return problems


def _path(loc: list[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _hint(path: str) -> str | None:
    bare = path.split("[")[0] if path.startswith("workers") else path
    if bare in _HINTS:
        return _HINTS[bare]
    leaf = path.rsplit(".", 1)[-1]
    leaf = leaf.split("[")[0]
    return _HINTS.get(leaf)


def _plain(item: Any) -> str:
    msg = str(item["msg"])
    replacements = {"Input should be ": "must be ", "a valid ": "", "Value error, ": ""}
    for old, new in replacements.items():
        msg = msg.replace(old, new)
    return msg


def _model_at(loc: list[int | str]) -> type[BaseModel] | None:
    """The model class that a location inside `ClusterConfig` names."""
    model: Any = ClusterConfig
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        model = _unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    for arg in (*typing.get_args(annotation), annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = typing.get_args(arg)
        for sub in inner:
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                return sub
    return annotation
