"""A recorded :class:`~meshchaos.mesh.kube._runner.Runner` for tests.

It is given the exact sequence of commands the code under test must run, each with a
canned result. Any command out of that order, or one not in it, fails the test at once
with the expected and the actual argv; :meth:`RecordedRunner.assert_done` fails when
expected commands were never run. This is the only fake the kube backend's tests use:
everything above the process boundary is the product's own code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from meshchaos.mesh.kube._runner import CommandNotFound, CommandTimedOut, Completed

__all__ = ["ANY", "Call", "RecordedRunner", "Step", "step"]


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()  # matches any one argument (a temp path, a generated name)


@dataclass(frozen=True)
class Step:
    """One expected command and what it returns (or raises)."""

    argv: tuple[object, ...]
    returncode: int = 0
    stdout: bytes | str = b""
    stderr: bytes | str = b""
    timeout: bool = False  # raise CommandTimedOut instead of returning
    missing: bool = False  # raise CommandNotFound: the program is not installed
    env: Mapping[str, str] | None = None  # when set, these variables must be passed

    def matches(self, argv: Sequence[str]) -> bool:
        return len(argv) == len(self.argv) and all(
            e is ANY or e == a for e, a in zip(self.argv, argv, strict=True)
        )


def step(*argv: object, **kw: object) -> Step:
    """``step("kind", "get", "clusters", stdout="meshchaos\\n")``."""
    return Step(tuple(argv), **kw)  # type: ignore[arg-type]


@dataclass
class Call:
    """A command the code under test ran."""

    argv: tuple[str, ...]
    timeout: float
    input: bytes | None
    env: Mapping[str, str] | None


@dataclass
class RecordedRunner:
    """Plays ``steps`` back in order; fails loudly on any other command."""

    steps: list[Step]
    calls: list[Call] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Completed:
        args = tuple(str(a) for a in argv)
        self.calls.append(Call(args, timeout, input, env))
        if not (timeout > 0 and math.isfinite(timeout)):
            raise AssertionError(f"no real deadline on {list(args)}: {timeout}")
        index = len(self.calls) - 1
        if index >= len(self.steps):
            raise AssertionError(
                f"unexpected command #{index + 1}: {list(args)}\n"
                f"(all {len(self.steps)} expected commands had already run)"
            )
        want = self.steps[index]
        if not want.matches(args):
            raise AssertionError(
                f"command #{index + 1} out of order:\n  expected {list(want.argv)}\n"
                f"  actual   {list(args)}"
            )
        if want.env is not None:
            for key, value in want.env.items():
                got = (env or {}).get(key)
                assert got == value, f"command #{index + 1}: env {key}={got!r}, want {value!r}"
        if want.missing:
            raise CommandNotFound(args)
        out, err = _bytes(want.stdout), _bytes(want.stderr)
        if want.timeout:
            raise CommandTimedOut(args, timeout, out, err)
        return Completed(args, want.returncode, out, err)

    def assert_done(self) -> None:
        """Every expected command ran."""
        left = self.steps[len(self.calls) :]
        assert not left, "expected commands never ran:\n" + "\n".join(
            f"  {list(s.argv)}" for s in left
        )

    @property
    def argvs(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls]


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
