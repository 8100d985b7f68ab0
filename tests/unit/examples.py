"""How many examples a costly property test draws (each builds a whole program in the
engine, seconds apiece): a few under the `default` hypothesis profile, the full count under
`HYPOTHESIS_PROFILE=ci` (tests/conftest.py registers both)."""

from __future__ import annotations

import os

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE", "default") == "ci"


def examples(default: int, thorough: int) -> int:
    """`thorough` under the ci profile, else `default`."""
    return thorough if THOROUGH else default
