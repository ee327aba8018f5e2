"""The fixtures a scenario uses: ``policy``, ``load``, ``instances``, ``chaos``, ``min_effect``.

They are thin: each wraps a library object of :mod:`meshchaos.scenario` for one test and
undoes what the test did when it ends, whatever happened (policies rolled back in
reverse order, killed instances restarted, replica counts restored), reporting every
problem. A user error (an unknown policy name, invalid YAML) fails the test with one
clear message, not a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

import pytest

from meshchaos.pytest_plugin._settings import settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from meshchaos.istio.model import Resource
    from meshchaos.mesh.base import Applied, Mesh
    from meshchaos.pytest_plugin._record import ScenarioRecord
    from meshchaos.scenario import Chaos, Instances, LoadDriver, PolicyApplier, PolicySource


def _user_error(exc: Exception) -> NoReturn:
    __tracebackhide__ = True
    pytest.fail(f"meshchaos: {exc}", pytrace=False)


def _policies(mesh: Mesh, config: pytest.Config) -> PolicyApplier:
    from meshchaos.errors import ConfigInvalid
    from meshchaos.manifests import PolicyNotFound
    from meshchaos.scenario import PolicyApplier

    class _Policies(PolicyApplier):
        """A :class:`PolicyApplier` whose user errors fail the test in one message."""

        def __call__(self, *sources: PolicySource) -> Applied:
            __tracebackhide__ = True
            try:
                return super().__call__(*sources)
            except (PolicyNotFound, ConfigInvalid) as exc:
                problem = exc
            _user_error(problem)  # outside the except: no "during handling" chain

        def told(self, sources: Sequence[PolicySource]) -> list[Resource]:
            __tracebackhide__ = True
            try:
                return super().told(sources)
            except (PolicyNotFound, ConfigInvalid) as exc:
                problem = exc
            _user_error(problem)

    return _Policies(mesh, settings(config).policy_dirs)


@pytest.fixture
def policy(mesh: Mesh, request: pytest.FixtureRequest) -> Iterator[PolicyApplier]:
    """Apply Istio policies for this test (``policy("name", path, ...)``); they are rolled
    back in reverse order afterwards and the mesh must be back where it was."""
    applier = _policies(mesh, request.config)
    try:
        yield applier
    finally:
        problems = applier.rollback()
        if not problems:
            problems = [f"after rollback, {line}" for line in applier.drift()]
        if problems:
            pytest.fail(
                "meshchaos: policy rollback did not restore the mesh:\n  " + "\n  ".join(problems),
                pytrace=False,
            )


@pytest.fixture
def load(mesh: Mesh) -> LoadDriver:
    """Bounded load through the mesh: ``load.send(RequestClass(...), n)``."""
    from meshchaos.scenario import LoadDriver

    return LoadDriver(mesh)


@pytest.fixture
def instances(mesh: Mesh) -> Iterator[Instances]:
    """Scale, kill and restart workloads; everything is put back after the test."""
    from meshchaos.scenario import Instances

    chaos = Instances(mesh)
    yield chaos
    problems = chaos.undo()
    if problems:
        pytest.fail(
            "meshchaos: could not undo instance chaos:\n  " + "\n  ".join(problems), pytrace=False
        )


@pytest.fixture
def min_effect(request: pytest.FixtureRequest) -> float:
    """``--min-effect``: the deviation of a share each scenario is sized to detect."""
    return settings(request.config).min_effect


@pytest.fixture
def chaos(
    mesh: Mesh,
    policy: PolicyApplier,
    load: LoadDriver,
    record: ScenarioRecord,
    instances: Instances,
    min_effect: float,
) -> Chaos:
    """A scenario's steps: ``apply``, ``predict``, ``size``, ``load``, ``expect``; and
    ``run(scenario)`` for a table row. Undone after the test like its parts."""
    from meshchaos.scenario import Chaos

    return Chaos(mesh, policy, load, record, instances, min_effect=min_effect)
