"""Standard 5-field cron: parsing, and translation to each cloud's scheduler.

Pure functions. A schedule is parsed into explicit value sets once; the AWS form
(`cron(m h dom mon dow year)`, as SSM State Manager takes it) and the systemd
`OnCalendar=` form are rendered from those sets, so both fire at the same times.
"""

from __future__ import annotations

from dataclasses import dataclass

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]


@dataclass(frozen=True)
class Cron:
    """A parsed schedule: the values each field allows; `None` means every value."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...] | None
    months: tuple[int, ...] | None
    weekdays: tuple[int, ...] | None


def _number(token: str, field: str, low: int, high: int) -> int:
    names = _MONTHS if field == "month" else _DAYS if field == "day-of-week" else []
    upper = token.upper()
    if upper in names:
        return names.index(upper) + (1 if field == "month" else 0)
    if not token.isdigit():
        raise ValueError(f"{field} '{token}' is not a number from {low} to {high}")
    value = int(token)
    if not low <= value <= high:
        raise ValueError(f"{field} {value} is outside {low}-{high}")
    return value


def _field(text: str, field: str, low: int, high: int) -> tuple[int, ...] | None:
    if text == "*":
        return None
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{field} step '{step_text}' must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, field, low, high), _number(last, field, low, high)
            if start > end:
                raise ValueError(f"{field} range '{base}' runs backwards")
        else:
            start = _number(base, field, low, high)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    if field == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values))


def parse_cron(expression: str) -> Cron:
    """Parse `m h dom mon dow`; raise ValueError naming the bad field."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(
            f"must be 5 cron fields 'minute hour day-of-month month day-of-week', got {len(parts)}"
        )
    parsed = [_field(text, *spec) for text, spec in zip(parts, _FIELDS, strict=True)]
    minutes, hours, days, months, weekdays = parsed
    if days is not None and weekdays is not None:
        raise ValueError(
            "set day-of-month or day-of-week, not both (clouds disagree on combining them)"
        )
    return Cron(
        minutes=minutes or tuple(range(60)),
        hours=hours or tuple(range(24)),
        days=days,
        months=months,
        weekdays=weekdays,
    )


def runs_per_hour(cron: Cron) -> int:
    """How many times the schedule can fire within one hour."""
    return len(cron.minutes)


def _join(values: tuple[int, ...] | None, names: list[str] | None = None, offset: int = 0) -> str:
    if values is None:
        return "*"
    if names is not None:
        return ",".join(names[v - offset] for v in values)
    return ",".join(str(v) for v in values)


def to_aws(cron: Cron) -> str:
    """The SSM State Manager / EventBridge form: `cron(m h dom mon dow *)`."""
    minutes = _join(None if len(cron.minutes) == 60 else cron.minutes)
    hours = _join(None if len(cron.hours) == 24 else cron.hours)
    months = _join(cron.months)
    if cron.weekdays is not None:
        return f"cron({minutes} {hours} ? {months} {_join(cron.weekdays, _DAYS)} *)"
    return f"cron({minutes} {hours} {_join(cron.days)} {months} ? *)"


def to_systemd(cron: Cron) -> str:
    """The systemd `OnCalendar=` form, in UTC."""
    weekday = "" if cron.weekdays is None else _join(cron.weekdays, _SYSTEMD_DAYS) + " "
    months = _join(cron.months, None)
    days = _join(cron.days)
    hours = ",".join(f"{h:02d}" for h in cron.hours) if len(cron.hours) < 24 else "*"
    minutes = ",".join(f"{m:02d}" for m in cron.minutes) if len(cron.minutes) < 60 else "*"
    return f"{weekday}*-{months}-{days} {hours}:{minutes}:00 UTC"
