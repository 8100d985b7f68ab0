"""Facts the program, the node script and the policy pack share, defined once (issue 14).

The program and the node script import each fact from `components/common/` or
`swarmstack/config/`. The policy pack runs from its own requirements and imports none of
ours, so where it needs a fact it keeps a copy, and these tests pin the copy to the
original.
"""

from __future__ import annotations

from typing import get_args

from hypothesis import given
from hypothesis import strategies as st

from components.common.managers import MANAGER_POOL, manager_plan, quorum
from policies import quorum as quorum_policies
from swarmstack.config.model import ClusterConfig, Managers


@given(st.integers(1, 99))
def test_quorum_is_a_strict_majority(managers: int) -> None:
    assert 2 * quorum(managers) > managers >= 2 * (quorum(managers) - 1)


def test_the_manager_plan_comes_from_the_config() -> None:
    for count in (1, 3, 5, 7):
        cfg = ClusterConfig.model_validate({"cloud": "aws", "name": "demo", "managers": {"count": count}})
        plan = manager_plan(cfg)
        assert (plan.pool, plan.count, plan.quorum) == (MANAGER_POOL, count, count // 2 + 1)


def test_the_packs_manager_counts_are_the_models() -> None:
    assert get_args(Managers.model_fields["count"].annotation) == quorum_policies.MANAGER_COUNTS


def test_the_packs_parameter_tree_is_the_clusters() -> None:
    from components.common.namespace import cluster_tree
    from policies.identity import _tree

    assert _tree([], "demo") == "arn:*:ssm:*:*:parameter" + cluster_tree("demo")


def test_the_nodes_log_groups_are_the_programs() -> None:
    from components.common.namespace import LOG_GROUP_KINDS, log_group_names
    from userdata.params import log_groups_for

    assert log_groups_for("demo") == log_group_names("demo")
    assert log_group_names("demo") == {kind: f"/swarmstack/demo/{kind}" for kind in LOG_GROUP_KINDS}


def test_the_model_checks_names_with_the_shared_patterns() -> None:
    from swarmstack.config.model import WorkerPool
    from swarmstack.config.patterns import CLUSTER_NAME, POOL_NAME

    schema = ClusterConfig.model_json_schema(by_alias=True)
    assert schema["properties"]["name"]["pattern"] == CLUSTER_NAME
    assert WorkerPool.model_json_schema()["properties"]["name"]["pattern"] == POOL_NAME


@given(st.sampled_from(["general", "managers", "batch-2"]),
       st.one_of(st.text(alphabet="abAZ09-._:/@+ ", max_size=70), st.sampled_from(["swarmstack.holder", "swarmstack"])),
       st.text(alphabet="aZ09-._:/@+ =,", max_size=130))
def test_the_config_refuses_what_the_user_data_would(pool: str, key: str, value: str) -> None:
    """A stack the config passes renders its user data: a worker pool's name and labels are
    checked by the same patterns in both."""
    from swarmstack.config.rules import check
    from userdata.params import params_for

    raw = {"cloud": "aws", "name": "demo", "workers": [{"name": pool, "labels": {key: value}}]}
    cfg = ClusterConfig.model_validate(raw)
    refused = any(p.path.startswith("workers[0].") for p in check(cfg, raw))
    try:
        params_for(cfg, "eu-west-1", "worker", pool, "0123abcd", "arn:aws:kms:eu-west-1:123456789012:key/k")
        rendered = True
    except ValueError:
        rendered = False
    assert refused != rendered, (pool, key, value)


def test_the_user_data_defaults_are_the_configs() -> None:
    from swarmstack.config.model import Backup, Prune
    from userdata.params import NodeUserData

    defaults = {f.name: f.default for f in NodeUserData.__dataclass_fields__.values()}
    assert defaults["prune_schedule"] == Prune().schedule
    assert defaults["prune_until"] == Prune().until
    assert defaults["backup_schedule"] == Backup().schedule


def test_the_pack_names_the_configs_default_prune_schedule() -> None:
    from policies.maintenance import prune_at_most_hourly
    from swarmstack.config.model import PRUNE_SCHEDULE

    assert f"the default {PRUNE_SCHEDULE}" in str(prune_at_most_hourly.remediation_steps)


# One parser of cron: swarmstack/config/cron.py. The pack reads only the minute field with its own copy.
CRON_MINUTES = ["*", "0", "42", "0,30", "*/15", "5-10", "10-50/20", "7/30", "59", "0-59/60", "1,1,2"]
CRON_REFUSED = ["60", "a", "*/0", "30-10", "-1", ""]


def test_the_packs_cron_reading_agrees_with_the_parser_on_a_table() -> None:
    import pytest

    from policies._cron import minute_runs_per_hour
    from swarmstack.config.cron import parse_cron, runs_per_hour

    for minute in CRON_MINUTES:
        assert minute_runs_per_hour(minute) == runs_per_hour(parse_cron(f"{minute} * * * *")), minute
    for minute in CRON_REFUSED:
        with pytest.raises(ValueError):
            minute_runs_per_hour(minute)
        with pytest.raises(ValueError):
            parse_cron(f"{minute} * * * *")


def test_the_packs_log_retentions_are_the_configs() -> None:
    from policies.observability import AWS_LOG_RETENTION as PACK
    from swarmstack.config.rules import AWS_LOG_RETENTION

    assert PACK == AWS_LOG_RETENTION


def test_the_pack_finds_nodes_by_the_programs_role_tag() -> None:
    from policies._cluster import ROLE_TAG as PACK
    from swarmstack.config.tags import ROLE_TAG

    assert PACK == ROLE_TAG
