"""User data as text, and the files it writes."""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import re
from collections.abc import Iterator
from typing import Any

from ._props import dig, is_unknown

NODES_WITH_USER_DATA = ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance",
                        "azure-native:compute:VirtualMachineScaleSet", "azure-native:compute:VirtualMachine")
"""Resource types `user_data_fields` reads."""


def decode_user_data(value: Any) -> str | None:
    """User data as text: base64 decoded (and gunzipped) when it is base64, else as is."""
    if not isinstance(value, str) or is_unknown(value):
        return None
    return _decode(value)


@functools.lru_cache(maxsize=64)
def _decode(value: str) -> str:
    compact = re.sub(r"\s+", "", value)
    data: bytes | None = None
    if compact and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", compact) and len(compact) % 4 == 0:
        try:
            data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            data = None
    if data is None:
        return value
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError:
            return value
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return value


def user_data_fields(resource_type: str, props: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(property path, raw value) of every user data / custom data property of a node resource."""
    if resource_type == "aws:ec2/launchTemplate:LaunchTemplate":
        yield "userData", props.get("userData")
    elif resource_type == "aws:ec2/instance:Instance":
        yield "userData", props.get("userData")
        yield "userDataBase64", props.get("userDataBase64")
    elif resource_type == "azure-native:compute:VirtualMachineScaleSet":
        profile = props.get("virtualMachineProfile")
        yield "virtualMachineProfile.osProfile.customData", dig(profile, "osProfile", "customData")
        yield "virtualMachineProfile.userData", dig(profile, "userData")
    elif resource_type == "azure-native:compute:VirtualMachine":
        yield "osProfile.customData", dig(props, "osProfile", "customData")
        yield "userData", props.get("userData")


def written_files(text: str) -> tuple[tuple[str, str], ...]:
    """(path, content) of files a node's user data writes: cloud-init `write_files` entries
    (plain, base64 or gzip+base64) and shell heredocs (`cat > PATH <<EOF … EOF`)."""
    return _written_files_cached(text)


@functools.lru_cache(maxsize=64)
def _parse_cloud_config(text: str) -> Any:
    import yaml  # a dependency of pulumi itself, so in the pack's virtualenv too

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None


@functools.lru_cache(maxsize=64)
def _written_files_cached(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(_written_files(text))


def _written_files(text: str) -> Iterator[tuple[str, str]]:
    if text.lstrip().startswith("#cloud-config"):
        document = _parse_cloud_config(text)
        entries = document.get("write_files") if isinstance(document, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                continue
            content = entry.get("content", "")
            encoding = str(entry.get("encoding", "")).lower()
            if isinstance(content, str) and encoding in ("b64", "base64", "gz+b64", "gzip+base64", "gz+base64"):
                content = decode_user_data(content) or content
            if isinstance(content, str):
                yield entry["path"], content
    for match in re.finditer(r"cat\s*>\s*['\"]?(\S+?)['\"]?\s*<<-?\s*['\"]?(\w+)['\"]?\n(.*?)\n\s*\2\b", text, re.S):
        yield match.group(1), match.group(3)
