"""Cron parsing and its translation to SSM (AWS) and systemd (Azure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmstack.config.cron import parse_cron, runs_per_hour, to_aws, to_systemd


@pytest.mark.parametrize(("cron", "aws", "systemd"), [
    ("42 1 * * *", "cron(42 1 * * ? *)", "*-*-* 01:42:00 UTC"),
    ("0 3 * * 0", "cron(0 3 ? * SUN *)", "Sun *-*-* 03:00:00 UTC"),
    ("0 3 * * 7", "cron(0 3 ? * SUN *)", "Sun *-*-* 03:00:00 UTC"),
    ("30 2 * * 1-5", "cron(30 2 ? * MON,TUE,WED,THU,FRI *)", "Mon,Tue,Wed,Thu,Fri *-*-* 02:30:00 UTC"),
    ("15 4 1 * *", "cron(15 4 1 * ? *)", "*-*-1 04:15:00 UTC"),
    ("0 */6 * * *", "cron(0 0,6,12,18 * * ? *)", "*-*-* 00,06,12,18:00:00 UTC"),
    ("0 0 * JAN,jul *", "cron(0 0 * 1,7 ? *)", "*-1,7-* 00:00:00 UTC"),
])
def test_translations(cron: str, aws: str, systemd: str) -> None:
    parsed = parse_cron(cron)
    assert to_aws(parsed) == aws
    assert to_systemd(parsed) == systemd


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


@given(fields)
def test_single_times_translate_to_the_same_instant(values: tuple[int, int, int | None, int | None]) -> None:
    minute, hour, day, weekday = values
    if day is not None and weekday is not None:
        weekday = None
    text = f"{minute} {hour} {'*' if day is None else day} * {'*' if weekday is None else weekday}"
    parsed = parse_cron(text)
    aws = to_aws(parsed)
    assert aws.startswith(f"cron({minute} {hour} ")
    assert aws.count("?") == 1
    assert f"{hour:02d}:{minute:02d}:00 UTC" in to_systemd(parsed)
