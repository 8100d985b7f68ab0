"""The cluster's plan (`components/common/plan.py`): what both clouds build, computed
before any resource, tested without one."""

from __future__ import annotations

from typing import Any

import pytest

from components.common.managers import MANAGER_POOL
from components.common.plan import PoolPlan, plan_cluster
from components.common.ports import Exposure
from swarmstack.config.load import load_stack
from swarmstack.config.model import ClusterConfig


def config(**raw: Any) -> ClusterConfig:
    return ClusterConfig.model_validate({"cloud": "aws", "name": "demo", **raw})


def test_prod_aws_plan() -> None:
    plan = plan_cluster(load_stack("prod-aws").cluster)
    assert (plan.cloud, plan.name, plan.production, plan.zone_count) == ("aws", "prod", True, 3)
    assert (plan.managers.count, plan.managers.quorum) == (3, 2)
    assert plan.pools == (
        PoolPlan(MANAGER_POOL, "manager", 3, (load_stack("prod-aws").cluster.managers.instance_type,), 50, False),
        PoolPlan("general", "worker", 3, ("m6i.large",), plan.pools[1].disk_gib, False, {"tier": "app"}),
        PoolPlan("batch", "worker", 2, ("m6i.large", "m5.large", "m6a.large"), plan.pools[2].disk_gib, True,
                 {"tier": "batch"}),
    )
    assert plan.load_balancer is not None and plan.load_balancer.public
    assert plan.docker_api is not None and plan.backup is not None and plan.prune is not None
    assert (plan.registry, plan.volumes, plan.metrics) == (None, None, None)
    assert plan.exposure == Exposure(docker_api=True, ssh=False, published=plan.load_balancer.ports,
                                     has_workers=True, load_balancer=True)


@pytest.mark.parametrize("stack", ["dev-aws", "dev-azure"])
def test_dev_plans_have_one_manager_and_no_backups(stack: str) -> None:
    plan = plan_cluster(load_stack(stack).cluster)
    assert [(p.name, p.role, p.count) for p in plan.pools] == [(MANAGER_POOL, "manager", 1), ("general", "worker", 1)]
    assert plan.managers.quorum == 1
    assert (plan.docker_api, plan.backup, plan.registry, plan.volumes, plan.metrics) == (None,) * 5


def test_prod_azure_plan_matches_its_stack() -> None:
    cfg = load_stack("prod-azure").cluster
    plan = plan_cluster(cfg)
    assert plan.cloud == "azure"
    assert [p.name for p in plan.worker_pools] == [w.name for w in cfg.workers]
    assert plan.manager_pool.instance_types == (cfg.managers.instance_type,)


def test_pools_keep_config_order_after_the_managers() -> None:
    plan = plan_cluster(config(workers=[{"name": "zeta", "count": 2}, {"name": "alpha", "spot": True}]))
    assert [(p.name, p.role, p.spot) for p in plan.pools] == [
        (MANAGER_POOL, "manager", False), ("zeta", "worker", False), ("alpha", "worker", True)]
    assert plan.has_workers


def test_without_workers_the_managers_serve() -> None:
    plan = plan_cluster(config())
    assert plan.worker_pools == () and not plan.has_workers and not plan.exposure.has_workers


def test_feature_switches() -> None:
    off = plan_cluster(config(loadBalancer={"enabled": False}, prune={"enabled": False}))
    assert off.load_balancer is None and off.prune is None and off.exposure.published == ()
    on = plan_cluster(config(registry={"enabled": True, "repositories": ["app"]}, sharedVolumes={"enabled": True},
                             metrics={"enabled": True}, backup={"enabled": True}))
    assert on.registry is not None and on.registry.repositories == ("app",)
    assert on.volumes is not None and on.volumes.throughput_mode == "elastic"
    assert on.metrics is not None and on.backup is not None


def test_ssh_exposure_per_cloud() -> None:
    assert plan_cluster(config(access={"sshKeyName": "ops"})).exposure.ssh
    azure = {"cloud": "azure", "access": {"sshPublicKey": "ssh-ed25519 AAAA ops"}}
    assert not plan_cluster(config(**azure)).exposure.ssh  # no admin ranges: nothing may reach port 22
    azure["access"]["adminCidrs"] = ["203.0.113.0/24"]  # type: ignore[index]
    assert plan_cluster(config(**azure)).exposure.ssh
