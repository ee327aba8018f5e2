"""Blindness check: make the local mesh deviate by 5 points and count what the suite catches.

    python benchmarks/deviation.py [--kind abort|delay|weight|mirror ...] [--out DIR]
                                   [--timeout 600] [-- PYTEST_ARGS...]

For each deviation kind (default: all four, see ``benchmarks/_deviate.py``), runs the
scenarios that could see it (``-k`` of the families below, or ``PYTEST_ARGS``) in a
fresh ``pytest`` with the ``_deviate`` plugin, which changes the Envoy config the local
mesh runs while the oracle still predicts from the YAML: a 50 % abort fires at 45 %, a
10 % abort at 5 %, a 50/50 split runs 45/55. Every scenario whose mesh ran a changed
route must fail ("caught"); one that passes is "blind". Scenarios the deviation did not
touch must pass: a failure there is a false alarm.

Prints one table per kind and writes ``deviation.json`` (default directory
``reports/deviation-<timestamp>``). Exits 0 when every deviated scenario was caught and
every untouched one passed, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _deviate import KINDS
from soak import run_once

FAMILIES = {
    "abort": "fault_injection or retries",
    "delay": "fault_injection or timeouts",
    "weight": "traffic_shifting or routing",
    "mirror": "mirroring",
}


@dataclass(frozen=True)
class Case:
    test_id: str
    outcome: str  # passed, failed, error, skipped
    deviated: str  # what the plugin changed for it, "" when nothing
    message: str

    @property
    def verdict(self) -> str:
        if self.outcome == "skipped":
            return "skipped"
        if self.deviated:
            return "caught" if self.outcome in ("failed", "error") else "blind"
        return "untouched" if self.outcome == "passed" else "false alarm"


def read_cases(path: Path) -> list[Case]:
    """The JUnit file's test cases with the plugin's ``deviated`` property."""
    cases = []
    for tc in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value", "") for p in tc.iter("property")}
        problems = [el for el in tc if el.tag in ("failure", "error")]
        skipped = tc.find("skipped") is not None
        outcome = (
            problems[0].tag.replace("failure", "failed")
            if problems
            else ("skipped" if skipped else "passed")
        )
        message = (problems[0].get("message") or "").splitlines()[0:1] if problems else []
        test_id = f"{tc.get('classname', '')}::{tc.get('name', '')}"
        cases.append(Case(test_id, outcome, props.get("deviated", ""), "".join(message)[:160]))
    return cases


def run_kind(kind: str, pytest_args: list[str], out: Path, timeout: float) -> list[Case]:
    junit = out / f"{kind}.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "_deviate",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={junit}",
        f"--reports-dir={out / kind}",
        *pytest_args,
    ]
    env_before = dict(os.environ)
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ["MESHCHAOS_DEVIATE"] = kind
    try:
        outcome = run_once(cmd, out / f"{kind}.log", timeout, 30.0)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    if outcome.timed_out or outcome.interrupted or not junit.exists():
        raise SystemExit(f"{kind}: pytest did not finish (see {out / (kind + '.log')})")
    return read_cases(junit)


def render(kind: str, cases: list[Case], wall: float) -> str:
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
    head = ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
    lines = [f"== {kind}: {len(cases)} scenarios in {wall:.0f} s: {head}"]
    for c in sorted(cases, key=lambda c: (c.verdict, c.test_id)):
        if c.verdict in ("caught", "blind", "false alarm"):
            name = c.test_id.split("::")[-1]
            lines.append(f"  {c.verdict:<11} {name}  [{c.deviated}]")
            if c.message:
                lines.append(f"              {c.message}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", action="append", choices=KINDS)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--timeout", type=float, default=600.0)
    opts = ap.parse_args(argv)
    out = opts.out or Path("reports") / time.strftime("deviation-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"points": 5, "kinds": {}}
    ok = True
    for kind in opts.kind or KINDS:
        args = extra or ["scenarios", "-k", FAMILIES[kind]]
        t0 = time.monotonic()
        cases = run_kind(kind, args, out, opts.timeout)
        wall = time.monotonic() - t0
        print(render(kind, cases, wall), flush=True)
        ok = ok and not any(c.verdict in ("blind", "false alarm") for c in cases)
        ok = ok and any(c.verdict == "caught" for c in cases)
        summary["kinds"][kind] = {  # type: ignore[index]
            "pytest_args": args,
            "wall_s": round(wall, 1),
            "cases": [asdict(c) | {"verdict": c.verdict} for c in cases],
        }
    (out / "deviation.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{'every deviation caught' if ok else 'BLIND SPOTS or false alarms'}; {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
