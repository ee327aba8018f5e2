"""The meshchaos pytest plugin: options, markers, fixtures and hooks, via ``pytest11``.

``pip install meshchaos`` makes it active in every pytest run of that environment, so
any repository gets the whole suite machinery; it starts a mesh only for a test that
asks for one. Its parts:

- :mod:`._hooks`: the ``meshchaos`` option group and ini options, the family markers,
  the ``--alpha`` split over scenarios (Bonferroni, Holm within each), the per-family
  summary, the run id shared by xdist workers;
- :mod:`._mesh`: ``mesh``, one mesh per session and xdist worker;
- :mod:`._chaos`: ``policy``, ``load``, ``instances``, ``min_effect`` and ``chaos``;
- :mod:`._record`: ``record``, one JSON record per scenario and ``run.json`` per run;
- :mod:`._settings`: the validated options and per-test state the others share.

A test counts as a scenario (spends a share of ``--alpha``) when it is marked
``scenario`` or with a family, asks for the ``chaos`` fixture, or lies under a path of
the ``meshchaos_scenario_paths`` ini option.
"""

from meshchaos.pytest_plugin._chaos import chaos, instances, load, min_effect, policy
from meshchaos.pytest_plugin._hooks import (
    pytest_addoption,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_call,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    pytest_sessionstart,
    pytest_terminal_summary,
)
from meshchaos.pytest_plugin._mesh import mesh, pytest_unconfigure
from meshchaos.pytest_plugin._record import pytest_sessionfinish, record
from meshchaos.pytest_plugin._settings import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_EFFECT,
    FAMILIES,
    Settings,
    check_reports,
    family_of,
    has_failed,
    is_scenario,
    phase_reports,
    scenario_alpha,
    settings,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_EFFECT",
    "FAMILIES",
    "Settings",
    "chaos",
    "check_reports",
    "family_of",
    "has_failed",
    "instances",
    "is_scenario",
    "load",
    "mesh",
    "min_effect",
    "phase_reports",
    "policy",
    "pytest_addoption",
    "pytest_collection_finish",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_call",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
    "pytest_sessionfinish",
    "pytest_sessionstart",
    "pytest_terminal_summary",
    "pytest_unconfigure",
    "record",
    "scenario_alpha",
    "settings",
]
