"""Blindness check: make the local mesh deviate by 5 points and count what the suite catches.

    python benchmarks/deviation.py [--kind abort|delay|weight|mirror ...] [--repeats 2]
                                   [--out DIR] [--timeout 600] [-- PYTEST_ARGS...]

For each deviation kind (default: all four; see ``benchmarks/_deviate.py``), runs the
scenarios that could see it (``-k`` of the families below, or ``PYTEST_ARGS``) in a
fresh ``pytest`` with the ``_deviate`` plugin, which changes the Envoy config the local
mesh runs while the oracle still predicts from the YAML: a 50 % abort fires at 45 %, a
10 % abort at 5 %, a 50 % delay at 45 %, a 50/50 split runs 45/55. Every scenario whose
mesh ran a changed route must fail ("caught"); one that passes is "blind". Scenarios
the deviation did not touch must pass: a failure there is a false alarm.

Each scenario is sized for power 0.95 against exactly 5 points, so about one covering
run in twenty passes by chance; a blind scenario passes nearly every time. So a deviated
scenario that passed is run again on its own, up to ``--repeats`` times: caught on a
repeat, it is "caught (repeat k)"; never caught, it is "blind".

A partial delay changes no outcome class, only the mixture of latencies within one; the
oracle's latency splits (``meshchaos.oracle._split``) are what catch it.

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
from dataclasses import asdict, dataclass, replace
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


DEFAULT_KINDS = ("abort", "delay", "weight", "mirror")
RUN_ALPHA = 0.01  # the suite's default --alpha


@dataclass(frozen=True)
class Case:
    test_id: str
    outcome: str  # passed, failed, error, skipped
    deviated: str  # what the plugin changed for it, "" when nothing
    message: str
    repeat: int = 0  # 0: the family run; k: the k-th run of this scenario alone

    @property
    def verdict(self) -> str:
        if self.outcome == "skipped":
            return "skipped"
        if self.deviated:
            if self.outcome in ("failed", "error"):
                return f"caught (repeat {self.repeat})" if self.repeat else "caught"
            return "blind"
        return "untouched" if self.outcome == "passed" else "false alarm"

    @property
    def node_id(self) -> str:
        """``scenarios/test_x.py::test_x[id]`` from JUnit's classname and name."""
        classname, _, name = self.test_id.partition("::")
        return classname.replace(".", "/") + ".py::" + name


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


def run_kind(
    kind: str, pytest_args: list[str], out: Path, timeout: float, label: str = ""
) -> list[Case]:
    label = label or kind
    junit = out / f"{label}.xml"
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
        f"--reports-dir={out / label}",
        *pytest_args,
    ]
    env_before = dict(os.environ)
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ["MESHCHAOS_DEVIATE"] = kind
    try:
        outcome = run_once(cmd, out / f"{label}.log", timeout, 30.0)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    if outcome.timed_out or outcome.interrupted or not junit.exists():
        raise SystemExit(f"{label}: pytest did not finish (see {out / (label + '.log')})")
    return read_cases(junit)


def repeat_uncaught(
    kind: str, cases: list[Case], repeats: int, out: Path, timeout: float
) -> list[Case]:
    """Run each deviated scenario that passed again, alone, until caught or ``repeats``.

    Alone, a scenario would get the run's whole alpha; ``--alpha`` gives it the share it
    had among the family's scenarios, so a repeat is judged as strictly as the first run.
    """
    alpha = f"--alpha={RUN_ALPHA / len(cases):.6g}"
    final = []
    for case in cases:
        for k in range(1, repeats + 1):
            if case.verdict != "blind":
                break
            label = f"{kind}-repeat-{k}-{len(final)}"
            (again,) = run_kind(kind, [case.node_id, alpha], out, timeout, label)
            case = replace(again, repeat=k)
        final.append(case)
    return final


def render(kind: str, cases: list[Case], wall: float) -> str:
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
    head = ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
    lines = [f"== {kind}: {len(cases)} scenarios in {wall:.0f} s: {head}"]
    for c in sorted(cases, key=lambda c: (c.verdict, c.test_id)):
        if c.verdict != "untouched":
            name = c.test_id.split("::")[-1]
            lines.append(f"  {c.verdict:<18} {name}  [{c.deviated}]")
            if c.message:
                lines.append(f"{'':21}{c.message}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", action="append", choices=KINDS)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--timeout", type=float, default=600.0)
    opts = ap.parse_args(argv)
    out = opts.out or Path("reports") / time.strftime("deviation-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"points": 5, "kinds": {}}
    ok = True
    for kind in opts.kind or DEFAULT_KINDS:
        args = extra or ["scenarios", "-k", FAMILIES[kind]]
        t0 = time.monotonic()
        cases = run_kind(kind, args, out, opts.timeout)
        cases = repeat_uncaught(kind, cases, opts.repeats, out, opts.timeout)
        wall = time.monotonic() - t0
        print(render(kind, cases, wall), flush=True)
        ok = ok and not any(c.verdict in ("blind", "false alarm") for c in cases)
        ok = ok and any(c.verdict.startswith("caught") for c in cases)
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
