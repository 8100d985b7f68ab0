"""Standard 5-field cron: parsing, and translation to each cloud's scheduler.

Pure functions. A schedule is parsed into explicit value sets once; the AWS form
(`cron(m h dom mon dow year)`, as SSM State Manager takes it) and the systemd
`OnCalendar=` form are rendered from those sets, so both fire at the same times.
State Manager runs associations on a few schedules only (`ssm_association_problem`);
systemd timers take any.
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


SSM_HOUR_STEPS = (1, 2, 4, 8, 12)
SSM_ASSOCIATION_RULE = ("State Manager runs associations only every 30 minutes, every 1, 2, 4, 8 or 12 hours, "
                        "or every day or week at a set time (no month or day of the month; days of the week as "
                        "one range such as MON-FRI), e.g. 42 1 * * *, 0 */4 * * * or 30 2 * * 1-5")
"""AWS Systems Manager User Guide, "Reference: Cron and rate expressions for Systems
Manager", section "Cron and rate expressions for associations"."""


def _hour_step(hours: tuple[int, ...]) -> tuple[int, int] | None:
    """(first hour, step) when `hours` is every N hours from the first, N one State Manager takes."""
    for step in SSM_HOUR_STEPS:
        first = hours[0]
        if first < step and hours == tuple(range(first, 24, step)):
            return first, step
    return None


def _day_range(weekdays: tuple[int, ...]) -> str | None:
    """`MON-FRI` or `SUN` for consecutive days of the week; None for a list with gaps."""
    if weekdays != tuple(range(weekdays[0], weekdays[-1] + 1)):
        return None
    first, last = _DAYS[weekdays[0]], _DAYS[weekdays[-1]]
    return first if first == last else f"{first}-{last}"


def ssm_association_problem(cron: Cron) -> str | None:
    """Why State Manager would refuse this schedule for an association, or None. Pure."""
    if cron.months is not None:
        return f"it names months ({_join(cron.months)}); {SSM_ASSOCIATION_RULE}"
    if cron.days is not None:
        return f"it names days of the month ({_join(cron.days)}); {SSM_ASSOCIATION_RULE}"
    weekdays = None if cron.weekdays is None or len(cron.weekdays) == 7 else cron.weekdays
    if weekdays is not None and _day_range(weekdays) is None:
        return f"its days of the week ({_join(weekdays, _DAYS)}) are not one range; {SSM_ASSOCIATION_RULE}"
    minutes, hours = cron.minutes, cron.hours
    half_hourly = len(minutes) == 2 and minutes[0] < 30 and minutes[1] == minutes[0] + 30
    if len(minutes) != 1 and not half_hourly:
        return f"it runs at minutes {_join(minutes)} of the hour; {SSM_ASSOCIATION_RULE}"
    if half_hourly and (len(hours) != 24 or weekdays is not None):
        return f"it runs every 30 minutes only at some times; {SSM_ASSOCIATION_RULE}"
    if len(hours) > 1 and _hour_step(hours) is None:
        return f"it runs at hours {_join(hours)}; {SSM_ASSOCIATION_RULE}"
    if len(hours) > 1 and weekdays is not None:
        return f"it runs several times a day on some days of the week only; {SSM_ASSOCIATION_RULE}"
    return None


def to_aws(cron: Cron) -> str:
    """The form of `cron` an SSM State Manager association takes: `cron(m/30 * * * ? *)`,
    `cron(m h/N * * ? *)`, `cron(m h * * ? *)` or `cron(m h ? * MON-FRI *)`. Raises
    ValueError (with the rule) for a schedule State Manager does not run associations on."""
    problem = ssm_association_problem(cron)
    if problem:
        raise ValueError(problem)
    minutes, hours = cron.minutes, cron.hours
    if len(minutes) == 2:
        return f"cron({minutes[0]}/30 * * * ? *)"
    if len(hours) > 1:
        first, step = _hour_step(hours) or (0, 1)
        return f"cron({minutes[0]} {first}/{step} * * ? *)"
    if cron.weekdays is not None and len(cron.weekdays) < 7:
        return f"cron({minutes[0]} {hours[0]} ? * {_day_range(cron.weekdays)} *)"
    return f"cron({minutes[0]} {hours[0]} * * ? *)"


def to_systemd(cron: Cron) -> str:
    """The systemd `OnCalendar=` form, in UTC."""
    weekday = "" if cron.weekdays is None else _join(cron.weekdays, _SYSTEMD_DAYS) + " "
    months = _join(cron.months, None)
    days = _join(cron.days)
    hours = ",".join(f"{h:02d}" for h in cron.hours) if len(cron.hours) < 24 else "*"
    minutes = ",".join(f"{m:02d}" for m in cron.minutes) if len(cron.minutes) < 60 else "*"
    return f"{weekday}*-{months}-{days} {hours}:{minutes}:00 UTC"
