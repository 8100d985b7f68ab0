"""The one part of cron the pack needs: how many times a minute field fires in an hour.

The pack carries its own (it runs from `policies/` with only its requirements, apart from
the program's config toolkit); the tests check it agrees with `swarmstack.config.cron`."""

from __future__ import annotations


def _minute(token: str) -> int:
    if not token.isdigit():
        raise ValueError(f"minute '{token}' is not a number from 0 to 59")
    value = int(token)
    if not 0 <= value <= 59:
        raise ValueError(f"minute {value} is outside 0-59")
    return value


def minute_runs_per_hour(field: str) -> int:
    """Runs per hour of a 5-field cron's minute field (`*`, `a`, `a-b`, `*/n`, `a-b/n`, `a/n`,
    lists of those). Raises ValueError naming the bad part."""
    if field == "*":
        return 60
    values: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"minute step '{step_text}' must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = 0, 59
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _minute(first), _minute(last)
            if start > end:
                raise ValueError(f"minute range '{base}' runs backwards")
        else:
            start = _minute(base)
            end = 59 if step_text else start
        values.update(range(start, end + 1, step))
    return len(values)
