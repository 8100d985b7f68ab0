"""`sharedVolumes`: off by default, each cloud's own knob, every mistake its exact line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swarmstack.config.load import load_stack
from tests.unit.test_config import errors

ROOT = Path(__file__).resolve().parents[2]
AWS = "stacks/Pulumi.prod-aws.yaml: swarmstack:cluster."
AZURE = "stacks/Pulumi.prod-azure.yaml: swarmstack:cluster."


def _shared(value: Any) -> Any:
    def mutate(cluster: dict[str, Any], _config: dict[str, Any]) -> None:
        cluster["sharedVolumes"] = value
    return mutate


@pytest.mark.parametrize("stack", ["dev-aws", "prod-aws", "dev-azure", "prod-azure"])
def test_shared_volumes_are_off_unless_asked_for(stack: str) -> None:
    shared = load_stack(stack, ROOT).cluster.shared_volumes
    assert not shared.enabled and shared.throughput_mode is None and shared.quota_gib is None


BAD_AWS = [
    ({"enabled": "sometimes"}, "sharedVolumes.enabled = sometimes: must be true or false"),
    ({"enabled": True, "throughputMode": "provisioned"},
     "sharedVolumes.throughputMode = provisioned: must be elastic or bursting"),
    ({"enabled": True, "quotaGiB": 100},
     "sharedVolumes.quotaGiB = 100: is for Azure; EFS grows with what is stored: remove it (or set throughputMode)"),
    ({"enabled": True, "driver": "efs"},
     "sharedVolumes.driver = efs: unknown key; valid keys here: enabled, throughputMode, quotaGiB"),
]


@pytest.mark.parametrize(("value", "expected"), BAD_AWS, ids=[b[1].split(":")[0] for b in BAD_AWS])
def test_a_bad_aws_value_gets_its_exact_line(value: dict[str, Any], expected: str) -> None:
    assert AWS + expected in errors("prod-aws", _shared(value))


BAD_AZURE = [
    ({"enabled": True, "quotaGiB": 99},
     "sharedVolumes.quotaGiB = 99: must be a whole number of GiB from 100 (the premium share minimum) to 102400"),
    ({"enabled": True, "quotaGiB": 102401},
     "sharedVolumes.quotaGiB = 102401: must be a whole number of GiB from 100 (the premium share minimum) to 102400"),
    ({"enabled": True, "quotaGiB": "200"},
     "sharedVolumes.quotaGiB = 200: must be a whole number of GiB from 100 (the premium share minimum) to 102400"),
    ({"enabled": True, "throughputMode": "elastic"},
     "sharedVolumes.throughputMode = elastic: is for AWS; an Azure premium share's throughput follows quotaGiB: "
     "remove it (or set quotaGiB)"),
]


@pytest.mark.parametrize(("value", "expected"), BAD_AZURE, ids=[b[1].split(":")[0] for b in BAD_AZURE])
def test_a_bad_azure_value_gets_its_exact_line(value: dict[str, Any], expected: str) -> None:
    assert AZURE + expected in errors("prod-azure", _shared(value))
