"""``meshchaos report`` and ``compare``: the HTML report of a run and the run-to-run
regression report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]

EXIT_REGRESSION = 1
EXIT_UNUSABLE = 2


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:  # also nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def _fraction(text: str) -> float:
    value = _positive(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number strictly between 0 and 1")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="write the self-contained HTML report of a run",
        description="Write RUN_DIR/report.html (or -o FILE): metadata, verdicts, plots, "
        "service graphs and policies of every scenario; with --baseline, the regression "
        "verdict against that run. Exit 0: written; 2: unusable input.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--baseline", type=Path, metavar="DIR", help="a run directory to compare with")
    p.add_argument(
        "--history",
        type=Path,
        metavar="FILE",
        help="history file for the status strip and sparklines (default: $MESHCHAOS_HISTORY, "
        "else history.jsonl beside RUN_DIR)",
    )
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="where to write the HTML")
    p.set_defaults(run=_report)
    p = sub.add_parser(
        "compare",
        help="regression report of two runs, in Markdown; exit 1 on a regression",
        description="Compare CURRENT with BASELINE scenario by scenario (run directories "
        "holding run.json). Exit 0: no regression; 1: a regression or a scenario that "
        "passed and now fails; 2: unusable input.",
    )
    p.add_argument("baseline", type=Path, metavar="BASELINE")
    p.add_argument("current", type=Path, metavar="CURRENT")
    p.add_argument(
        "--markdown", action="store_true", help="Markdown output (the default and only format)"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="also append the report to FILE (e.g. $GITHUB_STEP_SUMMARY)",
    )
    p.add_argument(
        "--alpha",
        type=_fraction,
        default=0.01,
        metavar="A",
        help="family-wise false-alarm rate of the whole comparison (Holm; default 0.01)",
    )
    p.add_argument(
        "--rate-threshold",
        type=_positive,
        default=2.0,
        metavar="PP",
        help="smallest material change of a share, in points (default 2)",
    )
    p.add_argument(
        "--rate-relative",
        type=_positive,
        default=0.2,
        metavar="R",
        help="...or R times min(p, 1-p) of the baseline share, if larger (default 0.2)",
    )
    p.add_argument(
        "--latency-threshold",
        type=_positive,
        default=15.0,
        metavar="PCT",
        help="smallest material change of a latency percentile, in percent (default 15)",
    )
    p.add_argument(
        "--latency-floor",
        type=_positive,
        default=2.0,
        metavar="MS",
        help="...but never less than MS milliseconds (default 2)",
    )
    p.set_defaults(run=_compare)


def _compare(args: argparse.Namespace) -> int:
    from meshchaos.report.compare import Thresholds, compare_runs
    from meshchaos.report.markdown import to_markdown
    from meshchaos.report.record import RecordError, read_run

    thresholds = Thresholds(
        alpha=args.alpha,
        rate_points=args.rate_threshold / 100,
        rate_relative=args.rate_relative,
        latency_relative=args.latency_threshold / 100,
        latency_floor=args.latency_floor / 1000,
    )
    try:
        comparison = compare_runs(read_run(args.baseline), read_run(args.current), thresholds)
    except RecordError as exc:
        print(f"meshchaos compare: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except (KeyError, TypeError, ValueError) as exc:  # a field of the wrong shape
        print(f"meshchaos compare: a record is damaged: {exc!r}", file=sys.stderr)
        return EXIT_UNUSABLE
    text = to_markdown(comparison)
    sys.stdout.write(text)
    if args.output is not None:
        with args.output.open("a") as out:
            out.write(text)
    return EXIT_REGRESSION if comparison.has_regression else 0


def _report(args: argparse.Namespace) -> int:
    from meshchaos.report.html import render_report
    from meshchaos.report.record import RecordError

    try:
        path = render_report(
            args.run_dir, baseline=args.baseline, history=args.history, output=args.output
        )
    except RecordError as exc:
        print(f"meshchaos report: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except (KeyError, TypeError, ValueError) as exc:  # a field of the wrong shape
        print(f"meshchaos report: a record is damaged: {exc!r}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"meshchaos: report {path}")
    return 0
