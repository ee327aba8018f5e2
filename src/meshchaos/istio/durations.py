"""Istio duration strings: parsing and istiod's duration rule.

Istio fields typed ``google.protobuf.Duration`` are written in YAML as strings. The
protobuf JSON form is ``"<seconds>s"`` (``"1.5s"``); Istio's Kubernetes path also
takes Go ``time.ParseDuration`` strings (``"500ms"``, ``"2m"``, ``"1h30m"``). We
accept Go's grammar, which is a superset of the protobuf one.
"""

from __future__ import annotations

import re

__all__ = ["DurationSyntaxError", "check_duration", "parse_duration", "parse_duration_ns"]

NANOS_PER_MS = 1_000_000

# Go's time.ParseDuration units (src/time/format.go, unitMap).
_UNITS_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # greek mu
    "ms": NANOS_PER_MS,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


class DurationSyntaxError(ValueError):
    """The text is not a duration."""


def parse_duration_ns(text: str) -> int:
    """Parse a duration string to integer nanoseconds (fractions of a ns truncate, as in Go).

    Raises :class:`DurationSyntaxError` when ``text`` is not a duration.
    """
    body = text
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":  # Go accepts a bare "0" and nothing else without a unit
        return 0
    if not body:
        raise DurationSyntaxError(text)
    total = 0
    pos = 0
    while pos < len(body):
        part = _PART.match(body, pos)
        if part is None:
            raise DurationSyntaxError(text)
        whole, frac, unit = part.group(1), part.group(2) or "", part.group(3)
        if not whole and not frac:  # ".s" or "s" alone
            raise DurationSyntaxError(text)
        scale = _UNITS_NS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = part.end()
    return sign * total


def parse_duration(text: str) -> float:
    """Parse a duration string to seconds."""
    return parse_duration_ns(text) / 1e9


def check_duration(nanos: int) -> str | None:
    """istiod's rule for durations (``agent/validation.go ValidateDuration``).

    Returns a problem message, or ``None`` when the duration is at least 1 ms and a
    whole number of milliseconds.
    """
    if nanos < NANOS_PER_MS:
        return f"must be >= 1ms (got {_show(nanos)})"
    if nanos % NANOS_PER_MS:
        return f"must be a whole number of milliseconds (got {_show(nanos)})"
    return None


def _show(nanos: int) -> str:
    if nanos % NANOS_PER_MS == 0:
        return f"{nanos // NANOS_PER_MS}ms"
    return f"{nanos}ns"
