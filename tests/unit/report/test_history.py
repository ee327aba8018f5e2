"""history.jsonl: one line per run, appended in one write; damaged lines are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fakes import Spec, write_run

from meshchaos.report.history import (
    HistoryError,
    append_run,
    history_line,
    read_history,
)
from meshchaos.report.html import render_report
from meshchaos.report.record import read_run


def _line(run_dir: Path) -> dict[str, object]:
    run = read_run(run_dir)
    return history_line(run.run, run.scenarios)


def test_a_run_appends_one_line_with_its_summary(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "r1", [Spec("a", error_share=0.1), Spec("b")], seed=1)
    path = tmp_path / "history.jsonl"
    append_run(path, _line(run_dir))
    append_run(path, _line(run_dir))
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    entry = json.loads(lines[0])
    assert entry["schema"] == "meshchaos.history"
    assert entry["schema_version"] == 1
    assert entry["run_id"] == "r1"
    assert entry["git_revision"] == "0" * 40
    a = next(s for s in entry["scenarios"] if s["id"].endswith("[a]"))
    assert a["outcome"] == "passed"
    assert a["requests"] == 2000
    assert 0.07 < a["error_share"] < 0.13
    assert 0.005 < a["p50"] < a["p99"] < 0.05
    history = read_history(path)
    assert len(history.runs) == 2
    assert history.warnings == []
    assert history.series(a["id"], "outcome", 5) == ["passed", "passed"]


def test_no_file_is_an_empty_history(tmp_path: Path) -> None:
    assert read_history(tmp_path / "none.jsonl").runs == []


def test_a_damaged_line_in_the_middle_is_an_error_naming_file_and_line(
    tmp_path: Path,
) -> None:
    run_dir = write_run(tmp_path / "r", [Spec("a")], seed=1)
    path = tmp_path / "history.jsonl"
    append_run(path, _line(run_dir))
    with path.open("a") as f:
        f.write("{not json\n")
    append_run(path, _line(run_dir))
    with pytest.raises(HistoryError, match=rf"^{path}:2: not JSON"):
        read_history(path)


def test_a_damaged_last_line_is_skipped_with_a_warning_naming_it(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "r", [Spec("a")], seed=1)
    path = tmp_path / "history.jsonl"
    append_run(path, _line(run_dir))
    with path.open("a") as f:
        f.write('{"schema": "meshchaos.hist')  # a run killed while writing
    history = read_history(path)
    assert len(history.runs) == 1
    assert len(history.warnings) == 1
    assert history.warnings[0].startswith(f"{path}:2: damaged last line skipped")


def test_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps({"schema": "meshchaos.history", "schema_version": 9}) + "\n")
    with pytest.raises(HistoryError, match=r":1: schema_version 9"):
        read_history(path)


def test_the_report_shows_a_status_strip_and_sparklines(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for night in range(4):
        spec = Spec("a", median=0.01 * (1 + night), outcome="failed" if night == 2 else "passed")
        run_dir = write_run(tmp_path / f"n{night}", [spec, Spec("b")], seed=night)
        append_run(path, _line(run_dir))
    text = render_report(run_dir, history=path).read_text()
    assert "last runs" in text
    assert text.count('<svg class="spark"') == 2
    assert '<i class="o-failed"' in text
    assert text.count('<i class="o-passed"') == 7
