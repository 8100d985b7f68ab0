"""Physical names within the clouds' limits: readable when they fit, shortened with a
hash of the whole when not, the same every time."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from components.common.names import bucket_name, fit, lb_name

names = st.from_regex(r"[a-z][a-z0-9-]{1,27}(-[a-z0-9-]{1,30}){1,3}", fullmatch=True)


@given(names, st.integers(16, 300))
def test_fit_is_within_the_limit_deterministic_and_keeps_names_that_fit(name: str, limit: int) -> None:
    out = fit(name, limit)
    assert len(out) <= limit and out == fit(name, limit)
    if len(name) <= limit:
        assert out == name
    else:
        assert re.fullmatch(r".*-[0-9a-f]{6}", out) and name.startswith(out[:-7].rstrip("-"))


@given(names, names)
def test_two_long_names_do_not_collide(first: str, second: str) -> None:
    if first != second:
        assert lb_name(first + "-lb-nlb" * 5) != lb_name(second + "-lb-nlb" * 5)


def test_load_balancer_and_bucket_names() -> None:
    assert lb_name("prod-lb-nlb") == "prod-lb-nlb"
    long = lb_name("a-cluster-name-of-28-chars-x-lb-tcp-443")
    assert len(long) == 32 and long.startswith("a-cluster-name-of-28-char-") and long == fit(
        "a-cluster-name-of-28-chars-x-lb-tcp-443", 32)
    assert lb_name("internal-x") == "lb-internal-x"
    bucket = bucket_name("swarmstack-A-cluster-name-of-28-chars-x-lb-logs-0a1b2c3d")
    assert len(bucket) <= 63 and bucket == bucket.lower()
