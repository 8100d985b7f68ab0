"""The Azure model: our own semantic checks of `azure-native:*` resources.

(Being written: until then every Azure resource fails loudly as unsupported.)
"""

from __future__ import annotations

from typing import Any

from swarmstack.engine.mocks import UnsupportedByEngine


class AzureBackend:
    def __init__(self, location: str):
        self.location = location

    def create(self, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise UnsupportedByEngine(f"{type_} '{name}': the engine has no model of this Azure resource type")

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        raise UnsupportedByEngine(f"{token}: the engine has no model of this Azure invoke")
