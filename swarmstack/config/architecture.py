"""Which CPU architecture an EC2 instance type has. Pure."""

from __future__ import annotations

import re
from typing import Literal

_GRAVITON = re.compile(r"^[a-z]+[0-9]+[a-z]*g[a-z]*\.")


def architecture(instance_type: str) -> Literal["x86_64", "arm64"]:
    """Graviton types carry a `g` after the generation (`t4g`, `m7gd`, `c7gn`, `g5g`);
    `g5` (a GPU family) does not."""
    return "arm64" if _GRAVITON.match(instance_type) else "x86_64"
