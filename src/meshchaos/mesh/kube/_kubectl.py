"""kubectl and istioctl argv with the cluster always named, and the deadline a step runs under.

Every command against a cluster carries ``--kubeconfig <file> --context <name>``, so no
call ever falls back on the current context of the user's kubeconfig (``kind create``
switches it, and a shared kubeconfig can point at a bystander cluster).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshchaos.errors import MeshError
from meshchaos.mesh.kube._runner import Completed, Runner

__all__ = ["Deadline", "DeadlineExpired", "Kube"]


class DeadlineExpired(MeshError):
    """A step's overall deadline ran out before the next command could start."""


class Deadline:
    """The time left to a whole step (cluster start, Istio install), for each command's timeout."""

    def __init__(
        self, seconds: float, what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.what = what
        self._clock = clock
        self._end = clock() + seconds

    def left(self, cap: float) -> float:
        """The time a command may take: ``cap``, or less when the step's end is nearer;
        :class:`DeadlineExpired` when it has passed."""
        remaining = self._end - self._clock()
        if remaining <= 0:
            raise DeadlineExpired(f"{self.what} did not finish within {self.seconds:g} s")
        return min(cap, remaining)


@dataclass(frozen=True)
class Kube:
    """One cluster as the tools address it: a kubeconfig file and a context in it."""

    runner: Runner
    kubeconfig: Path
    context: str

    def kubectl_argv(self, *args: str) -> list[str]:
        return ["kubectl", "--kubeconfig", str(self.kubeconfig), "--context", self.context, *args]

    def istioctl_argv(self, istioctl: str, *args: str) -> list[str]:
        return [istioctl, *args, "--kubeconfig", str(self.kubeconfig), "--context", self.context]

    def kubectl(self, *args: str, timeout: float, what: str) -> Completed:
        """Run kubectl; a non-zero exit is a :class:`CommandFailed` saying ``what``."""
        return self.runner.run(self.kubectl_argv(*args), timeout=timeout).check(what)

    def get_json(self, *args: str, timeout: float, what: str) -> dict[str, Any]:
        """``kubectl get ... -o json`` as a dict."""
        done = self.kubectl("get", *args, "-o", "json", timeout=timeout, what=what)
        try:
            data = json.loads(done.text)
        except ValueError as exc:
            raise MeshError(f"{what}: kubectl printed no JSON ({exc})") from None
        if not isinstance(data, dict):
            raise MeshError(f"{what}: kubectl printed JSON that is not an object")
        return data
