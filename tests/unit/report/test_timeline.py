"""Outcomes over time in the record: round bin widths, at most 60 bins, dense rows."""

from __future__ import annotations

import pytest

from meshchaos.load import Sample
from meshchaos.report.timeline import MAX_BINS, bin_width, class_series, timeline_of


@pytest.mark.parametrize(
    ("span", "width"),
    [(0.0, 0.001), (0.05, 0.001), (0.5, 0.01), (6.0, 0.2), (59.0, 1.0), (60.0, 2.0), (300, 10)],
)
def test_bin_width_is_round_and_keeps_to_the_bin_cap(span: float, width: float) -> None:
    assert bin_width(span) == width
    assert span // width + 1 <= MAX_BINS


def test_timeline_counts_each_class_per_bin_of_send_time() -> None:
    samples = [Sample(t / 10, 0.01, 200, "ok") for t in range(100)]
    samples += [Sample(5.0 + t / 10, 0.01, 503, "status:503") for t in range(10)]
    tl = timeline_of(samples)
    assert tl["bin_seconds"] == 0.2
    assert tl["classes"] == ["ok", "status:503"]
    assert len(tl["counts"]) == 50  # 0 .. 9.9 s in 0.2 s bins
    assert sum(r[0] for r in tl["counts"]) == 100
    series = class_series(tl)
    assert sum(series["status:503"]) == 10
    assert series["status:503"][:25] == [0] * 25


def test_an_empty_load_has_an_empty_timeline() -> None:
    assert timeline_of([]) == {"bin_seconds": 1.0, "classes": [], "counts": []}
