"""Problem collection and typed field readers shared by the per-kind parsers.

Every reader takes the raw value (``None`` when absent) and its path, reports a type
problem instead of raising, and returns ``None`` when the value is absent or unusable.
This is what lets a parse report every problem in one pass.
"""

from __future__ import annotations

from typing import Any

from meshchaos.istio.durations import DurationSyntaxError, check_duration, parse_duration_ns


class Problems:
    """Problems of one resource, each rendered ``<prefix>: <path>: <message>``."""

    def __init__(self, prefix: str, sink: list[str]) -> None:
        self.prefix = prefix
        self._sink = sink
        self.count = 0

    def add(self, path: str, message: str) -> None:
        """Record one problem at ``path``."""
        self.count += 1
        self._sink.append(f"{self.prefix}: {path}: {message}")


class Reader:
    """Typed access to raw YAML values; type errors go to ``problems``."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def add(self, path: str, message: str) -> None:
        self.problems.add(path, message)

    def mapping(self, value: Any, path: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, not {_kind(value)}")
            return None
        return value

    def seq(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(path, f"must be a list, not {_kind(value)}")
            return []
        return value

    def string(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(path, f"must be a string, not {_kind(value)}")
            return None
        return value

    def integer(self, value: Any, path: str, *, minimum: int | None = None) -> int | None:
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"must be an integer, not {_kind(value)}")
            return None
        if minimum is not None and value < minimum:
            self.add(path, f"must be >= {minimum}")
            return None
        return value

    def number(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"must be a number, not {_kind(value)}")
            return None
        return float(value)

    def boolean(self, value: Any, path: str) -> bool | None:
        if value is None:
            return None
        if not isinstance(value, bool):
            self.add(path, f"must be true or false, not {_kind(value)}")
            return None
        return value

    def str_map(self, value: Any, path: str) -> dict[str, str]:
        raw = self.mapping(value, path)
        if not raw:
            return {}
        out: dict[str, str] = {}
        for key, item in raw.items():
            if not isinstance(key, str):
                self.add(path, f"key {key!r} must be a string")
                continue
            text = self.string(item, f"{path}.{key}")
            if text is not None:
                out[key] = text
        return out

    def str_list(self, value: Any, path: str) -> tuple[str, ...]:
        out: list[str] = []
        for i, item in enumerate(self.seq(value, path)):
            text = self.string(item, f"{path}[{i}]")
            if text is not None:
                out.append(text)
        return tuple(out)

    def duration(self, value: Any, path: str, *, validate: bool = True) -> float | None:
        """A duration in seconds; with ``validate``, also istiod's >= 1ms whole-ms rule."""
        nanos = self.duration_ns(value, path)
        if nanos is None:
            return None
        if validate:
            message = check_duration(nanos)
            if message is not None:
                self.add(path, message)
                return None
        return nanos / 1e9

    def duration_ns(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(path, f'invalid duration {value!r}: write it as a string such as "1.5s"')
            return None
        try:
            return parse_duration_ns(value)
        except DurationSyntaxError:
            self.add(path, f'invalid duration "{value}"')
            return None

    def percent(self, value: Any, path: str) -> float | None:
        """An Istio ``Percent`` message, ``{value: x}``; an absent ``value`` is 0."""
        raw = self.mapping(value, path)
        if raw is None:
            return None
        got = self.number(raw.get("value", 0.0), f"{path}.value")
        return got if got is not None else None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
