"""Prune rules: how often, and never volumes without the stack's opt-in."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from policy_testing import b64, messages, resource, summary

from policies import maintenance
from policies.maintenance import aws_schedule_runs_per_hour, systemd_calendar_runs_per_hour, systemd_span_seconds
from swarmstack.config.cron import parse_cron, runs_per_hour, ssm_association_problem, to_aws, to_systemd

ASSOCIATION = "aws:ssm/association:Association"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
PRUNE = "docker system prune --all --force --filter until=24h"


def association(**changes: Any) -> Any:
    props: dict[str, Any] = {"name": "AWS-RunShellScript", "associationName": "prod-prune",
                             "scheduleExpression": "cron(42 1 ? * * *)", "parameters": {"commands": PRUNE},
                             "targets": [{"key": "tag:swarmstack:cluster", "values": ["prod"]}]}
    props.update(changes)
    return resource(ASSOCIATION, "prod-prune", props)


def cloud_config(on_calendar: str, command: str = PRUNE) -> str:
    return f"""#cloud-config
write_files:
  - path: /etc/systemd/system/swarmstack-cleanup.timer
    content: |
      [Unit]
      Description=swarmstack: manager clean-up every 60s

      [Timer]
      OnBootSec=2min
      OnUnitInactiveSec=60s
  - path: /etc/systemd/system/swarmstack-prune.service
    content: |
      [Service]
      Type=oneshot
      ExecStart=/usr/bin/{command}
  - path: /etc/systemd/system/swarmstack-prune.timer
    content: |
      [Unit]
      Description=swarmstack: docker prune

      [Timer]
      OnCalendar={on_calendar}
      RandomizedDelaySec=10min

      [Install]
      WantedBy=timers.target
"""


def scale_set(text: str) -> Any:
    return resource(VMSS, "workers", {"virtualMachineProfile": {"osProfile": {"customData": b64(text)}}})


@pytest.mark.parametrize(("expression", "runs"), [
    ("cron(42 1 ? * * *)", 1), ("cron(0 * * * ? *)", 1), ("cron(0/15 * * * ? *)", 4), ("cron(*/30 * ? * MON *)", 2),
    ("rate(30 minutes)", 2), ("rate(1 hour)", 1), ("rate(90 minutes)", 1), ("rate(1 day)", 1),
    ("at(2026-01-01T00:00:00)", 1),
])
def test_aws_schedules(expression: str, runs: int) -> None:
    assert aws_schedule_runs_per_hour(expression) == runs


@pytest.mark.parametrize(("expression", "runs"), [
    ("*-*-* 01:42:00 UTC", 1), ("Mon,Tue *-*-* 01,13:42:00 UTC", 1), ("hourly", 1), ("daily", 1),
    ("minutely", 60), ("*:0/15", 4), ("*-*-* *:00,30:00", 2), ("*-*-* *:*:00", 60),
])
def test_systemd_calendars(expression: str, runs: int) -> None:
    assert systemd_calendar_runs_per_hour(expression) == runs


def test_systemd_spans() -> None:
    assert systemd_span_seconds("30min") == 1800
    assert systemd_span_seconds("1h 30min") == 5400
    assert systemd_span_seconds("900") == 900


# --- prune-at-most-hourly ---------------------------------------------------------------------------

def test_prune_daily_passes() -> None:
    assert messages(maintenance.prune_at_most_hourly, association()) == []
    assert messages(maintenance.prune_at_most_hourly, summary()) == []
    assert messages(maintenance.prune_at_most_hourly, scale_set(cloud_config("*-*-* 01:42:00 UTC"))) == []


def test_prune_too_often_is_refused() -> None:
    assert messages(maintenance.prune_at_most_hourly, association(scheduleExpression="rate(15 minutes)")) == [
        "scheduleExpression 'rate(15 minutes)' runs the prune 4 times an hour; at most hourly"]
    assert messages(maintenance.prune_at_most_hourly, association(scheduleExpression="cron(*/10 * * * ? *)")) == [
        "scheduleExpression 'cron(*/10 * * * ? *)' runs the prune 6 times an hour; at most hourly"]
    assert messages(maintenance.prune_at_most_hourly, association(scheduleExpression="every day")) == [
        "scheduleExpression can't be read: 'every day' is neither cron(...), rate(...) nor at(...)"]
    assert messages(maintenance.prune_at_most_hourly, summary(prune_schedule="*/20 * * * *")) == [
        "pruneSchedule '*/20 * * * *' runs 3 times an hour; prune at most hourly (daily is usual)"]
    assert messages(maintenance.prune_at_most_hourly, scale_set(cloud_config("*:0/5"))) == [
        "virtualMachineProfile.osProfile.customData: the prune timer's OnCalendar=*:0/5 runs 12 times an hour; "
        "at most hourly"]


def test_other_frequent_jobs_are_not_prunes() -> None:
    other = association(associationName="prod-health", parameters={"commands": "docker node ls"},
                        scheduleExpression="rate(5 minutes)")
    assert messages(maintenance.prune_at_most_hourly, other) == []


# --- prune-volumes-opt-in ------------------------------------------------------------------------------

VOLUME_PRUNE = "docker system prune --all --force --volumes"


def test_prune_without_volumes_passes() -> None:
    assert messages(maintenance.prune_volumes_opt_in, summary(), association()) == []
    assert messages(maintenance.prune_volumes_opt_in, summary(prune_volumes=True),
                    association(parameters={"commands": VOLUME_PRUNE})) == []


def test_prune_volumes_without_opt_in_is_refused() -> None:
    volumes = association(parameters={"commands": VOLUME_PRUNE})
    assert messages(maintenance.prune_volumes_opt_in, summary(), volumes) == [
        "prod-prune: parameters.commands runs `docker system prune --all --force --volumes`, which deletes unused "
        "volumes and their data, but the stack has not opted in (prune.volumes: false)"]
    assert messages(maintenance.prune_volumes_opt_in, summary(),
                    scale_set(cloud_config("daily", "docker volume prune --force"))) == [
        "workers: virtualMachineProfile.osProfile.customData runs `docker volume prune`, which deletes unused "
        "volumes and their data, but the stack has not opted in (prune.volumes: false)"]
    document = resource("aws:ssm/document:Document", "prune-doc", {
        "documentType": "Command",
        "content": '{"mainSteps": [{"inputs": {"runCommand": ["docker volume prune -f"]}}]}'})
    assert messages(maintenance.prune_volumes_opt_in, summary(), document) == [
        "prune-doc: content runs `docker volume prune`, which deletes unused volumes and their data, but the stack "
        "has not opted in (prune.volumes: false)"]


GUARDED = """#!/usr/bin/env bash
readonly PRUNE_VOLUMES={value}
cmd_prune() {{
  docker system prune --all --force --filter "until=24h" >/dev/null
  if [[ $PRUNE_VOLUMES == true ]]; then
    docker volume prune --force >/dev/null
  fi
}}
"""


def test_a_volume_prune_switched_off_in_the_rendered_script_passes() -> None:
    off = scale_set(GUARDED.format(value="false"))
    assert messages(maintenance.prune_volumes_opt_in, summary(), off) == []
    on = scale_set(GUARDED.format(value="true"))
    assert messages(maintenance.prune_volumes_opt_in, summary(), on) == [
        "workers: virtualMachineProfile.osProfile.customData runs `docker volume prune`, which deletes unused "
        "volumes and their data, but the stack has not opted in (prune.volumes: false)"]


# --- the schedules the program renders read back as the config meant -------------------------------

minute_fields = st.one_of(
    st.just("*"),
    st.integers(0, 59).map(str),
    st.integers(1, 59).map(lambda step: f"*/{step}"),
    st.lists(st.integers(0, 59), min_size=1, max_size=6, unique=True).map(lambda ms: ",".join(map(str, ms))),
    st.tuples(st.integers(0, 59), st.integers(0, 59)).map(lambda ab: f"{min(ab)}-{max(ab)}"),
)
hour_fields = st.one_of(st.just("*"), st.integers(0, 23).map(str), st.integers(1, 12).map(lambda s: f"*/{s}"))


@given(minute_fields, hour_fields, st.sampled_from(["*", "MON-FRI", "0", "1,3,5"]))
def test_rendered_schedules_read_back_at_the_same_rate(minute: str, hour: str, weekday: str) -> None:
    cron = parse_cron(f"{minute} {hour} * * {weekday}")
    if ssm_association_problem(cron) is None:  # State Manager runs only some schedules (validate refuses the rest)
        assert aws_schedule_runs_per_hour(to_aws(cron)) == runs_per_hour(cron)
    assert systemd_calendar_runs_per_hour(to_systemd(cron)) == runs_per_hour(cron)


@given(st.integers(1, 600))
def test_a_rate_in_minutes_counts_the_busiest_hour(minutes: int) -> None:
    runs = aws_schedule_runs_per_hour(f"rate({minutes} minutes)")
    assert runs == max(1, -(-60 // minutes))
    assert (runs > 1) == (minutes < 60)
