"""Cron parsing and its translation to SSM (AWS) and systemd (Azure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmstack.config.cron import SSM_ASSOCIATION_RULE, parse_cron, runs_per_hour, to_aws, to_systemd
from swarmstack.engine.aws import check_schedule_expression


@pytest.mark.parametrize(("cron", "aws", "systemd"), [
    ("42 1 * * *", "cron(42 1 * * ? *)", "*-*-* 01:42:00 UTC"),
    ("0 3 * * 0", "cron(0 3 ? * SUN *)", "Sun *-*-* 03:00:00 UTC"),
    ("0 3 * * 7", "cron(0 3 ? * SUN *)", "Sun *-*-* 03:00:00 UTC"),
    ("30 2 * * 1-5", "cron(30 2 ? * MON-FRI *)", "Mon,Tue,Wed,Thu,Fri *-*-* 02:30:00 UTC"),
    ("0 */4 * * *", "cron(0 0/4 * * ? *)", "*-*-* 00,04,08,12,16,20:00:00 UTC"),
    ("10 1-23/2 * * *", "cron(10 1/2 * * ? *)",
     "*-*-* 01,03,05,07,09,11,13,15,17,19,21,23:10:00 UTC"),
    ("5 * * * *", "cron(5 0/1 * * ? *)", "*-*-* *:05:00 UTC"),
    ("*/30 * * * *", "cron(0/30 * * * ? *)", "*-*-* *:00,30:00 UTC"),
    ("0 6 * * 0-6", "cron(0 6 * * ? *)", "Sun,Mon,Tue,Wed,Thu,Fri,Sat *-*-* 06:00:00 UTC"),
])
def test_translations(cron: str, aws: str, systemd: str) -> None:
    parsed = parse_cron(cron)
    assert to_aws(parsed) == aws
    assert check_schedule_expression(aws) is None, aws  # the engine's model of State Manager agrees
    assert to_systemd(parsed) == systemd


@pytest.mark.parametrize(("cron", "problem", "systemd"), [
    ("15 4 1 * *", "it names days of the month (1)", "*-*-1 04:15:00 UTC"),
    ("0 */6 * * *", "it runs at hours 0,6,12,18", "*-*-* 00,06,12,18:00:00 UTC"),
    ("0 0 * JAN,jul *", "it names months (1,7)", "*-1,7-* 00:00:00 UTC"),
    ("0 3 * * 1,3,5", "its days of the week (MON,WED,FRI) are not one range", "Mon,Wed,Fri *-*-* 03:00:00 UTC"),
    ("*/15 * * * *", "it runs at minutes 0,15,30,45 of the hour", "*-*-* *:00,15,30,45:00 UTC"),
    ("0 */2 * * 1-5", "it runs several times a day on some days of the week only",
     "Mon,Tue,Wed,Thu,Fri *-*-* 00,02,04,06,08,10,12,14,16,18,20,22:00:00 UTC"),
])
def test_schedules_state_manager_does_not_run_are_refused_with_the_rule(cron: str, problem: str,
                                                                         systemd: str) -> None:
    parsed = parse_cron(cron)
    with pytest.raises(ValueError) as caught:
        to_aws(parsed)
    assert str(caught.value) == f"{problem}; {SSM_ASSOCIATION_RULE}"
    assert to_systemd(parsed) == systemd  # a systemd timer (Azure) takes any of them


@pytest.mark.parametrize(("cron", "message"), [
    ("* * * *", "must be 5 cron fields 'minute hour day-of-month month day-of-week', got 4"),
    ("60 * * * *", "minute 60 is outside 0-59"),
    ("0 24 * * *", "hour 24 is outside 0-23"),
    ("0 0 0 * *", "day-of-month 0 is outside 1-31"),
    ("0 0 * 13 *", "month 13 is outside 1-12"),
    ("0 0 * * 8", "day-of-week 8 is outside 0-7"),
    ("*/0 * * * *", "minute step '0' must be a positive number"),
    ("5-1 * * * *", "minute range '5-1' runs backwards"),
    ("x * * * *", "minute 'x' is not a number from 0 to 59"),
    ("0 0 1 * 1", "set day-of-month or day-of-week, not both (clouds disagree on combining them)"),
])
def test_bad_cron_says_which_field(cron: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cron(cron)
    assert str(caught.value) == message


def test_runs_per_hour() -> None:
    assert runs_per_hour(parse_cron("42 1 * * *")) == 1
    assert runs_per_hour(parse_cron("*/15 * * * *")) == 4
    assert runs_per_hour(parse_cron("* * * * *")) == 60


fields = st.tuples(st.integers(0, 59), st.integers(0, 23), st.one_of(st.none(), st.integers(1, 28)),
                   st.one_of(st.none(), st.integers(0, 6)))


accepted = st.one_of(
    st.builds(lambda m, h, d: f"{m} {h} * * {d}", st.integers(0, 59), st.integers(0, 23),
              st.sampled_from(["*", "0", "1-5", "MON-FRI", "sat", "2-4", "0-6"])),
    st.builds(lambda m, step, first: f"{m} {first % step}-23/{step} * * *", st.integers(0, 59),
              st.sampled_from([1, 2, 4, 8, 12]), st.integers(0, 11)),
    st.builds(lambda m: f"{m},{m + 30} * * * *", st.integers(0, 29)),
)


@given(accepted)
def test_every_schedule_the_translation_emits_is_one_state_manager_runs(expression: str) -> None:
    assert check_schedule_expression(to_aws(parse_cron(expression))) is None


@given(fields)
def test_single_times_translate_to_the_same_instant(values: tuple[int, int, int | None, int | None]) -> None:
    minute, hour, day, weekday = values
    if day is not None and weekday is not None:
        weekday = None
    text = f"{minute} {hour} {'*' if day is None else day} * {'*' if weekday is None else weekday}"
    parsed = parse_cron(text)
    if day is not None:  # State Manager takes no day of the month
        with pytest.raises(ValueError):
            to_aws(parsed)
    else:
        aws = to_aws(parsed)
        assert aws.startswith(f"cron({minute} {hour} ")
        assert aws.count("?") == 1
    assert f"{hour:02d}:{minute:02d}:00 UTC" in to_systemd(parsed)
