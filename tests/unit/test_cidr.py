"""Splitting a network into subnets: never overlapping, always inside, as many as asked."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.common.cidr import split


def test_prod_split() -> None:
    assert split("10.20.0.0/16", 6) == ["10.20.0.0/19", "10.20.32.0/19", "10.20.64.0/19",
                                        "10.20.96.0/19", "10.20.128.0/19", "10.20.160.0/19"]


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match=r"10.0.0.0/26 is too small for 12 subnets of at least /28"):
        split("10.0.0.0/26", 12)


@given(prefix=st.integers(16, 24), count=st.integers(1, 16), base=st.integers(0, 255))
def test_subnets_are_disjoint_and_inside(prefix: int, count: int, base: int) -> None:
    network = ipaddress.IPv4Network((f"10.{base}.0.0", prefix), strict=False)
    subnets = [ipaddress.IPv4Network(s) for s in split(str(network), count)]
    assert len(subnets) == count
    assert all(s.subnet_of(network) for s in subnets)
    assert all(not a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])
    assert all(s.prefixlen <= 28 for s in subnets)
