"""Azure on booted nodes: the fake Azure's IMDS at 169.254.169.254, its data plane
behind the fault proxy, custom data rendered for the `prod-azure` stack."""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_scenarios import converge, one_swarm, tokens_match_swarm, wait_for

pytestmark = pytest.mark.integration


def test_azure_nodes_boot_before_role_assignments_apply(clusters: Any, timing: Any) -> None:
    """Scenario 1 on Azure: for the first minute every Key Vault, Table and ARM call is
    refused (403: the role assignments are not applied yet, as RBAC takes minutes), and
    writes to Key Vault for two (its role assignment applies last): the manager can win
    the election and init, then fail to store the tokens. It must still store them; the
    worker joins."""
    from cluster_azure import AzureRealBootCluster

    cluster = clusters(kind=AzureRealBootCluster)
    cluster.provision(1, {"general": 1})
    started = time.monotonic()
    cluster.faults.add("denied", 60)
    cluster.faults.add("denied", 120, service="kv", operation="PUT")
    cluster.boot_new()
    wait_for("a refused call", lambda: [c for c in cluster.faults.calls() if c["fault"] == "denied"], 90,
             cluster.diagnostics)
    converge(cluster, timing, "boot to converged swarm (403 for a minute)", 420, since=started, in_service=False)
    one_swarm(cluster)
    tokens_match_swarm(cluster)
