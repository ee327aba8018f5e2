"""The end of a run: ``junit.xml`` and ``report.html`` in the run directory, one history line.

On the controller (or the single process; xdist workers do nothing here):

* at configure time, when the user gave no ``--junitxml``, pytest's junitxml plugin is
  pointed at ``<reports-dir>/<run-id>/junit.xml``. That plugin reads
  ``config.option.xmlpath`` in its own ``pytest_configure``, so this module must be
  configured after the meshchaos settings exist (the run id) and before junitxml: the
  plugin's ``pytest_configure`` registers this module once the settings are stored,
  which runs this module's ``pytest_configure`` at once (a historic hook), while
  junitxml, a built-in registered before meshchaos, runs after every meshchaos
  implementation. A session that records no scenario (a unit-test run in an environment
  where meshchaos is installed) gets no junit file of ours: the junitxml instance
  made for the default path is unregistered after the test loop;
* at session end, after ``run.json`` is written, one line is appended to the history
  file (``$MESHCHAOS_HISTORY``, else ``<reports-dir>/history.jsonl``) and the report is
  rendered. Anything that goes wrong there is one warning line in the terminal summary,
  never a traceback, and the exit status stays the tests' own.

The renderer (matplotlib, Jinja2) is imported only at session end, and only when the
run wrote records: loading the plugin stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from meshchaos.pytest_plugin._settings import settings

__all__ = [
    "JUNIT_FILE",
    "pytest_configure",
    "pytest_runtestloop",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
]

JUNIT_FILE = "junit.xml"
_DEFAULT_JUNIT = pytest.StashKey[Path]()
_OUTCOME = pytest.StashKey[list[str]]()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_OUTCOME] = []
    if _is_worker(config) or not hasattr(config.option, "xmlpath"):
        return  # a worker, or junitxml disabled (-p no:junitxml)
    if config.option.xmlpath:
        return  # the user chose where it goes
    path = settings(config).run_dir / JUNIT_FILE
    config.option.xmlpath = str(path)
    config.stash[_DEFAULT_JUNIT] = path


def _has_records(run_dir: Path) -> bool:
    return run_dir.is_dir() and any(
        p.suffix == ".json" and p.name != "run.json" for p in run_dir.iterdir()
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    try:
        return (yield)
    finally:
        _drop_default_junit(session.config)


def _drop_default_junit(config: pytest.Config) -> None:
    """No scenario recorded anything: the junit file the user never asked for is not
    written (it would create an otherwise empty run directory)."""
    path = config.stash.get(_DEFAULT_JUNIT, None)
    if path is None or _has_records(path.parent):
        return
    del config.stash[_DEFAULT_JUNIT]
    try:
        # pytest keeps its LogXML under this stash key and unregisters it at unconfigure;
        # a private name, so a pytest without it just writes the file as configured.
        from _pytest.junitxml import xml_key
    except ImportError:
        return
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        del config.stash[xml_key]
        config.pluginmanager.unregister(xml)


def _history_path(config: pytest.Config) -> Path:
    from meshchaos.report.history import HISTORY_ENV, HISTORY_FILE

    env = os.environ.get(HISTORY_ENV)
    return Path(env) if env else settings(config).reports_dir / HISTORY_FILE


def _finish(config: pytest.Config) -> list[str]:
    """Append the history line and render the report; the lines to print."""
    from meshchaos.report.history import HistoryError, append_run, history_line, read_history
    from meshchaos.report.html import render_report
    from meshchaos.report.record import read_run

    run_dir = settings(config).run_dir
    lines: list[str] = []
    history = _history_path(config)
    run = read_run(run_dir)
    try:
        append_run(history, history_line(run.run, run.scenarios))
        past = read_history(history)
        lines += [f"meshchaos: warning: {w}" for w in past.warnings]
    except (HistoryError, OSError) as exc:
        lines.append(f"meshchaos: warning: history not used: {exc}")
        from meshchaos.report.history import History

        past = History(history)
    path = render_report(run_dir, history=past)
    lines.append(f"meshchaos: report {path}")
    return lines


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # trylast: after the plugin's own sessionfinish has written run.json.
    config = session.config
    if _is_worker(config) or not _has_records(settings(config).run_dir):
        return
    try:
        config.stash[_OUTCOME] = _finish(config)
    except Exception as exc:  # any: the tests' outcome must not be hidden by the report
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        config.stash[_OUTCOME] = [
            f"meshchaos: warning: the report could not be written: {type(exc).__name__}: {reason}"
        ]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for line in config.stash.get(_OUTCOME, []):
        terminalreporter.write_line(line, yellow="warning" in line)
