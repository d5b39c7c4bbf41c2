"""Durations as engineers write them on a command line: `90s`, `30m`, `24h`, `7d`, `2w`."""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
LONGEST = 10 * 365 * 86400  # ten years: anything longer is a typo, not a window
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw]?)")


def parse_duration(text: str) -> float:
    """Seconds in `text`: a number with an optional unit s, m, h, d or w (a bare number is
    seconds). Raises ValueError saying what is wrong."""
    match = _DURATION.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 24h, 7d or 2w")
    seconds = float(match.group(1)) * UNITS[match.group(2) or "s"]
    if seconds > LONGEST:
        raise ValueError(f"{text!r} is longer than ten years")
    return seconds
