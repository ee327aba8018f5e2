"""The HTML report: self-contained, well formed, failures first, every section drawn."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fakes import Spec, write_run

from meshchaos.cli import main
from meshchaos.report.html import render_report

VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "area", "col", "base"}


class Page(HTMLParser):
    """Checks nesting, collects attributes that could load something, and the sections."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.loads: list[str] = []
        self.details: list[dict[str, str | None]] = []
        self.section_tags: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href", "xlink:href", "action", "data", "poster"):
            value = a.get(key) or ""
            if re.match(r"\s*(https?:)?//", value):
                self.loads.append(f"<{tag} {key}={value}>")
        if tag == "link":
            self.loads.append(f"<link {a}>")
        if tag == "details":
            self.details.append(a)
            self.section_tags.append([])
        if self.section_tags and "details" in [*self.stack, tag]:
            cls = a.get("class") or ""
            self.section_tags[-1].append(f"{tag}.{cls}" if cls else tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.section_tags and "details" in self.stack:
            self.section_tags[-1].append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    specs = [
        Spec("calm", error_share=0.05),
        Spec("broken", error_share=0.30, outcome="failed"),
        Spec("slow", median=0.2),
    ]
    return write_run(tmp_path / "runs" / "current", specs, seed=1)


def test_the_report_is_well_formed_and_loads_nothing(run_dir: Path) -> None:
    path = render_report(run_dir)
    assert path == run_dir / "report.html"
    page = parse(path)
    assert page.problems == []
    assert page.stack == []
    assert page.loads == []
    text = path.read_text()
    assert "<script>" in text
    assert "<style>" in text
    assert not re.search(r"@import|url\((?!#)", text), "CSS must not load anything"


def test_the_filter_script_and_its_controls_are_there(run_dir: Path) -> None:
    text = render_report(run_dir).read_text()
    for control in ('id="family"', 'id="failures"', 'id="text"'):
        assert control in text
    assert "addEventListener" in text
    assert 'data-family="fault_injection"' in text


def test_a_failed_scenario_sorts_first(run_dir: Path) -> None:
    page = parse(render_report(run_dir))
    outcomes = [d.get("data-outcome") for d in page.details]
    assert outcomes[0] == "failed"
    assert page.details[0].get("open") is not None or "open" in page.details[0]
    assert sorted(outcomes[1:]) == ["passed", "passed"]


def test_each_scenario_section_has_its_plots_graph_and_policy(run_dir: Path) -> None:
    page = parse(render_report(run_dir))
    assert len(page.section_tags) == 3
    for tags in page.section_tags:
        for needed in ("figure.plot-shares", "figure.plot-ecdf", "figure.plot-timeline"):
            assert needed in tags
        assert "svg.graph" in tags
        assert tags.count("svg") >= 3  # the three matplotlib figures
        assert "pre" in tags  # the policy YAML


def test_the_svgs_embed_no_fonts_and_have_distinct_ids(run_dir: Path) -> None:
    text = render_report(run_dir).read_text()
    assert "@font-face" not in text
    assert "<font" not in text
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "ids of inlined SVGs must not collide"


def test_a_baseline_shows_the_regression(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", [Spec("a", error_share=0.05), Spec("b")], seed=2)
    cur = write_run(tmp_path / "cur", [Spec("a", error_share=0.15), Spec("b")], seed=3)
    text = render_report(cur, baseline=base).read_text()
    section = text[text.index('id="comparison"') :]
    assert "REGRESSION" in section
    assert re.search(r'class="v-REGRESSED">REGRESSED</td><td>test_s\[a\]', section)
    assert "test_s[b]" not in section.split("Changed metrics")[1].split("</table>")[0]


def test_the_cli_writes_the_report_and_says_where(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(run_dir), "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"meshchaos: report {out}\n"
    assert out.stat().st_size > 10_000


def test_the_cli_says_when_the_run_is_unusable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meshchaos report: ")
    assert err.count("\n") == 1
