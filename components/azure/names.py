"""Names Azure wants globally unique and tightly formed: Key Vault and storage account. Pure."""

from __future__ import annotations

import re

from components.common.names import KEY_VAULT_NAME

STORAGE_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
"""3 to 24 lowercase letters and digits."""
SUFFIX = re.compile(r"^[a-z0-9]{4,8}$")


def _check_suffix(suffix: str) -> None:
    if not SUFFIX.match(suffix):
        raise ValueError(f"suffix {suffix!r} must be 4 to 8 lowercase letters and digits")


def key_vault_name(cluster: str, suffix: str) -> str:
    """`<cluster>-<suffix>`, the cluster part shortened and cleaned so the whole is a valid vault name."""
    _check_suffix(suffix)
    base = re.sub(r"-+", "-", cluster).strip("-")
    base = base[: 24 - len(suffix) - 1].rstrip("-")
    if not base or not base[0].isalpha():
        base = "kv" + base
        base = base[: 24 - len(suffix) - 1].rstrip("-")
    name = f"{base}-{suffix}"
    assert KEY_VAULT_NAME.match(name), name
    return name


def storage_account_name(cluster: str, suffix: str) -> str:
    """`<cluster letters and digits><suffix>`, at most 24 lowercase characters."""
    _check_suffix(suffix)
    base = re.sub(r"[^a-z0-9]", "", cluster.lower())[: 24 - len(suffix)]
    name = f"{base}{suffix}"
    if len(name) < 3:
        name = f"sw{name}"
    assert STORAGE_ACCOUNT_NAME.match(name), name
    return name


def computer_name_prefix(cluster: str, role: str) -> str:
    """The host name prefix of a scale set's machines (Azure appends a 6-character instance id)."""
    return re.sub(r"-+", "-", f"{cluster}-{role}")[:50].strip("-")
