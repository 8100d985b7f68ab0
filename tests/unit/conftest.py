"""Unit-suite fixtures.

The Azure program generates a 4096-bit RSA SSH key (components/azure/cluster.py) in every
run, and the engine's TLS model (swarmstack/engine/local.py) makes a real one: a second
or more of each run spent on key generation alone, in dozens of runs. In the unit suite a
worker makes one 4096-bit RSA key per public exponent and hands it to every such request;
the TLS model still serialises it (PEM, OpenSSH) as for a fresh key. No unit test compares
the SSH keys of two runs. Smaller RSA keys, the ECDSA and Ed25519 keys (the Docker API's CA,
server and client keys) are generated fresh each time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import swarmstack.engine.local as local

SHARED_RSA_BITS = 4096


class _OneLargeRsaKey:
    """`cryptography`'s rsa module, but one key per process for a 4096-bit request."""

    def __init__(self, rsa: Any) -> None:
        self._rsa = rsa
        self._keys: dict[int, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rsa, name)

    def generate_private_key(self, public_exponent: int, key_size: int, *args: Any, **kwargs: Any) -> Any:
        if key_size != SHARED_RSA_BITS or args or kwargs:
            return self._rsa.generate_private_key(public_exponent, key_size, *args, **kwargs)
        if public_exponent not in self._keys:
            self._keys[public_exponent] = self._rsa.generate_private_key(public_exponent, key_size)
        return self._keys[public_exponent]


@pytest.fixture(autouse=True, scope="session")
def _one_large_rsa_key_per_worker() -> Iterator[None]:
    original = local.rsa
    local.rsa = _OneLargeRsaKey(original)  # type: ignore[assignment]
    try:
        yield
    finally:
        local.rsa = original
