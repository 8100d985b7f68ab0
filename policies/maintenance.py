"""The scheduled `docker system prune`: never volumes unless the stack opts in, and never
more often than hourly. AWS runs it as an SSM association; Azure as a systemd timer in
the scale set's custom data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    StackValidationArgs,
)

from ._cluster import CLUSTER_TYPES, summaries
from ._cron import minute_runs_per_hour
from ._props import is_unknown, need, plain
from ._rules import Report, resource_rule, stack_rule
from ._userdata import NODES_WITH_USER_DATA, decode_user_data, user_data_fields

ASSOCIATION = "aws:ssm/association:Association"
DOCUMENT = "aws:ssm/document:Document"

VOLUME_PRUNE = re.compile(r"docker\s+(system\s+prune\b[^\n;&|]*--volumes|volume\s+prune\b)")
PRUNE = re.compile(r"(?i)prune")

# --- schedules ------------------------------------------------------------------------------------


def _cron_runs_per_hour(five_fields: str) -> int:
    """Runs per hour of a standard 5-field cron (only the minute field matters)."""
    return minute_runs_per_hour(five_fields.split()[0])


def aws_schedule_runs_per_hour(expression: str) -> int:
    """How often per hour an SSM / EventBridge schedule can fire: `cron(m h dom mon dow y)`,
    `rate(n unit)` or a one-off `at(...)`. Raises ValueError when it can't be read."""
    text = expression.strip()
    match = re.fullmatch(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if amount <= 0:
            raise ValueError(f"'{expression}' has a rate of 0")
        return max(1, -(-60 // amount)) if unit.startswith("minute") else 1  # at most ceil(60/n) in any hour
    match = re.fullmatch(r"cron\((.+)\)", text)
    if match:
        fields = match.group(1).split()
        if len(fields) not in (5, 6):
            raise ValueError(f"'{expression}' must have 6 fields: minute hour day-of-month month day-of-week year")
        return _cron_runs_per_hour(" ".join(fields[:5]))
    if re.fullmatch(r"at\(.+\)", text):
        return 1
    raise ValueError(f"'{expression}' is neither cron(...), rate(...) nor at(...)")


_SPAN = {"us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
         "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
         "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
_CALENDAR_SHORTHANDS = {"minutely": 60, "hourly": 1, "daily": 1, "weekly": 1, "monthly": 1, "yearly": 1,
                        "annually": 1, "quarterly": 1, "semiannually": 1}


def systemd_span_seconds(text: str) -> float:
    """`30min`, `1h 30min`, `900` (seconds) as seconds."""
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text.strip().lower())
    if not parts:
        raise ValueError(f"'{text}' is not a time span")
    for amount, unit in parts:
        if unit and unit not in _SPAN:
            raise ValueError(f"'{text}' has an unknown unit '{unit}'")
        total += float(amount) * _SPAN[unit or "s"]
    return total


def _minute_values(field: str) -> int:
    """How many minutes of an hour a systemd calendar minute field matches."""
    count = 0
    for part in field.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            start = 0
        elif base.isdigit():
            start = int(base)
        else:
            raise ValueError(f"minute '{field}' is not understood")
        if step:
            count += len(range(start, 60, int(step)))
        elif base == "*":
            count += 60
        else:
            count += 1
    return count


def systemd_calendar_runs_per_hour(expression: str) -> int:
    """Runs per hour of a systemd `OnCalendar=` expression (`*-*-* 01:42:00 UTC`, `hourly`, `*:0/15`)."""
    text = expression.strip()
    if text.lower() in _CALENDAR_SHORTHANDS:
        return _CALENDAR_SHORTHANDS[text.lower()]
    tokens = [t for t in text.split() if not re.fullmatch(r"[A-Za-z]+(/[A-Za-z_]+)?", t)
              and not re.fullmatch(r"[A-Za-z]{3}(\.\.[A-Za-z]{3})?(,[A-Za-z]{3}(\.\.[A-Za-z]{3})?)*", t)]
    times = [t for t in tokens if ":" in t]
    if not times:
        return 1  # a date without a time: midnight
    pieces = times[-1].split(":")
    if len(pieces) < 2:
        raise ValueError(f"'{expression}' has no minute")
    return _minute_values(pieces[1])


def timers(text: str) -> Iterator[tuple[str, str, str]]:
    """(setting, value, context) for each OnCalendar=/OnUnitActiveSec=/OnBootSec= of every
    `[Timer]` section in a script; context is the text before the section (its file name
    and [Unit] description), to tell a prune timer from another."""
    for match in re.finditer(r"\[Timer\]", text):
        before = text[max(0, match.start() - 1500):match.start()]
        starts = [m.start() for m in re.finditer(r"(?m)^\s*-?\s*path:|cat\s+>|tee\s|#cloud-config", before)]
        context = before[starts[-1]:] if starts else before[-600:]
        body = text[match.end():]
        end = re.search(r"\n\s*\[[A-Za-z]+\]|\n\s*-\s*path:|\n[A-Z_]+\n|\nEOF\b", body)
        body = body[:end.start()] if end else body
        settings = r"(OnCalendar|OnUnitActiveSec|OnUnitInactiveSec|OnActiveSec|OnBootSec)\s*=\s*([^\n]+)"
        for setting in re.finditer(settings, body):
            yield setting.group(1), setting.group(2).strip().strip("'\""), context


def _timer_runs_per_hour(setting: str, value: str) -> int:
    if setting == "OnCalendar":
        return systemd_calendar_runs_per_hour(value)
    if setting in ("OnUnitActiveSec", "OnUnitInactiveSec"):
        seconds = systemd_span_seconds(value)
        return 60 if seconds <= 0 else max(1, int(3600 // seconds))
    return 1  # OnBootSec / OnActiveSec fire once


# --- prune-at-most-hourly -------------------------------------------------------------------------


def _association_text(props: dict[str, Any]) -> str:
    parts = [str(props.get("associationName") or ""), str(props.get("name") or "")]
    parameters = props.get("parameters")
    if isinstance(parameters, dict):
        parts += [str(v) for v in parameters.values() if not is_unknown(v)]
    return "\n".join(parts)


def _prune_at_most_hourly(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    kind = args.resource_type
    if kind in CLUSTER_TYPES:
        schedule = props.get("pruneSchedule")
        if isinstance(schedule, str) and schedule:
            try:
                runs = _cron_runs_per_hour(schedule)
            except ValueError as err:
                report(f"pruneSchedule '{schedule}' can't be read: {err}")
                return
            if runs > 1:
                report(f"pruneSchedule '{schedule}' runs {runs} times an hour; prune at most hourly "
                       "(daily is usual)")
    elif kind == ASSOCIATION:
        if not PRUNE.search(_association_text(props)):
            return
        expression = need(props.get("scheduleExpression"), "scheduleExpression")
        if not expression:
            return  # no schedule: runs once, when nodes register
        try:
            runs = aws_schedule_runs_per_hour(str(expression))
        except ValueError as err:
            report(f"scheduleExpression can't be read: {err}")
            return
        if runs > 1:
            report(f"scheduleExpression '{expression}' runs the prune {runs} times an hour; at most hourly")
    else:
        for path, value in user_data_fields(kind, props):
            text = decode_user_data(value)
            if not text:
                continue
            for setting, timer, context in timers(text):
                if not PRUNE.search(context):
                    continue
                try:
                    runs = _timer_runs_per_hour(setting, timer)
                except ValueError as err:
                    report(f"{path}: the prune timer's {setting}={timer} can't be read: {err}")
                    continue
                if runs > 1:
                    report(f"{path}: the prune timer's {setting}={timer} runs {runs} times an hour; "
                           "at most hourly")


prune_at_most_hourly = resource_rule(
    name="prune-at-most-hourly",
    resource_types=(*CLUSTER_TYPES, ASSOCIATION, *NODES_WITH_USER_DATA),
    description="The scheduled docker prune runs at most once an hour.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_prune_at_most_hourly,
    remediation_steps="Set prune.schedule to a cron that fires once a day (the default 42 1 * * *), or at "
                      "most hourly (for example 17 * * * *).",
)

# --- prune-volumes-opt-in --------------------------------------------------------------------------


def _prune_texts(resource_type: str, props: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if resource_type == ASSOCIATION:
        parameters = props.get("parameters")
        if isinstance(parameters, dict):
            for key, value in parameters.items():
                if isinstance(value, str) and not is_unknown(value):
                    yield f"parameters.{key}", value
    elif resource_type == DOCUMENT:
        content = props.get("content")
        if isinstance(content, str) and not is_unknown(content):
            yield "content", content
    else:
        for path, value in user_data_fields(resource_type, props):
            text = decode_user_data(value)
            if text:
                yield path, text


_GUARD = re.compile(r"if\s+\[\[?\s*\"?\$\{?(\w+)\}?\"?\s*==?\s*\"?true\"?\s*\]\]?")


def _switched_off(text: str, start: int) -> bool:
    """Whether the command at `start` sits in an `if [[ $VAR == true ]]` block of a script
    that sets `VAR=false` once and for all (how a rendered node script carries the opt-in)."""
    window = text[max(0, start - 400):start]
    guards = list(_GUARD.finditer(window))
    if not guards or re.search(r"\bfi\b", window[guards[-1].end():]):
        return False
    var = re.escape(guards[-1].group(1))
    assignment = r"(?m)^\s*(?:readonly\s+|declare\s+(?:-\w+\s+)?|export\s+)?" + var + r"=[\"']?(\w+)[\"']?\s*$"
    values = {m.group(1) for m in re.finditer(assignment, text)}
    return values == {"false"}


def _prune_volumes_opt_in(args: StackValidationArgs, report: Report) -> None:
    found = summaries(args.resources)
    if not found:
        args.not_applicable("no swarmstack Cluster summary in the stack")
    if any(s.prune_volumes for s in found):
        args.not_applicable("the stack opts in to pruning volumes (prune.volumes: true)")
    for resource in args.resources:
        for path, text in _prune_texts(resource.resource_type, plain(resource.props)):
            flat = text.replace("\\\n", " ")
            for match in VOLUME_PRUNE.finditer(flat):
                if _switched_off(flat, match.start()):
                    continue
                report(f"{resource.name}: {path} runs `{' '.join(match.group(0).split())}`, which deletes unused "
                       "volumes and their data, but the stack has not opted in (prune.volumes: false)",
                       resource.urn)
                break


prune_volumes_opt_in = stack_rule(
    name="prune-volumes-opt-in",
    description="The scheduled prune never deletes volumes unless the stack opts in (prune.volumes: true).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_prune_volumes_opt_in,
    remediation_steps="Drop --volumes from the prune command, or set prune.volumes: true if losing unused "
                      "volumes' data is really intended.",
)

RESOURCE_POLICIES = [prune_at_most_hourly]
STACK_POLICIES = [prune_volumes_opt_in]
