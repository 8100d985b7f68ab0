"""The stack's config as the Pulumi engine hands it to the program."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from pulumi.runtime import config as runtime_config


def stack_config() -> dict[str, Any]:
    """Every config key of the running stack (`swarmstack:cluster`, `aws:region`, …),
    with structured values decoded from the JSON the engine passes them as."""
    raw: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        key = key.replace(":config:", ":", 1)
        if isinstance(value, str) and value[:1] in "{[":
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        out[key] = value
    return out
