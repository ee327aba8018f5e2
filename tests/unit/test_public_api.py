"""The public API: what ``import meshchaos`` offers, and that it stays light."""

from __future__ import annotations

import subprocess
import sys

import meshchaos
from meshchaos import errors


def test_every_exported_name_resolves_and_every_lazy_name_is_exported() -> None:
    exported = set(meshchaos.__all__)
    assert all(hasattr(meshchaos, n) for n in exported)
    error_names = {n for n in dir(errors) if isinstance(getattr(errors, n), type) and n[0] != "_"}
    assert exported == set(meshchaos._LAZY) | (error_names & exported)
    assert {"expect", "matches", "RequestClass", "Chaos", "Scenario"} <= exported


def test_lazy_names_are_the_objects_of_their_home_modules() -> None:
    from meshchaos.check import matches
    from meshchaos.scenario import Chaos

    assert meshchaos.matches is matches
    assert meshchaos.Chaos is Chaos


def test_importing_meshchaos_does_not_load_the_statistics_stack() -> None:
    code = "import sys, meshchaos; print('scipy' in sys.modules, 'aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_loading_the_pytest_plugin_does_not_load_the_statistics_stack() -> None:
    # The plugin is active in every pytest run of an environment with meshchaos.
    code = (
        "import sys, meshchaos.pytest_plugin; "
        "print('scipy' in sys.modules, 'aiohttp' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
