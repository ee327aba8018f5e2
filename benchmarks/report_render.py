"""Report rendering benchmark: size and seconds of the HTML report of a whole run.

    python benchmarks/report_render.py RUN_DIR [--repeat 3]

Renders RUN_DIR's report (to a temporary file) and, in the same go as the reference, the
report of a one-scenario copy of the same run (its first record), so the ratio says
what a scenario costs beyond the fixed part (imports, template, first figure). Prints
bytes and the best wall and CPU seconds of ``--repeat`` renders. Budgets
(docs/REPORT.md): the catalogue's report under about 3 MB and 15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from meshchaos.report.html import render_report


def _one_scenario_copy(run_dir: Path, into: Path) -> Path:
    run = json.loads((run_dir / "run.json").read_text())
    first = sorted(run["records"])[0]
    into.mkdir(parents=True)
    shutil.copy(run_dir / first, into / first)
    run["records"] = [first]
    (into / "run.json").write_text(json.dumps(run))
    return into


def _time(run_dir: Path, out: Path, repeat: int) -> tuple[float, float, int]:
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        render_report(run_dir, output=out, history=None)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        import jinja2  # noqa: F401
        import matplotlib.figure  # noqa: F401  (the import, timed apart)

        imports = time.perf_counter() - t0
        one = _one_scenario_copy(args.run_dir, Path(tmp) / "one")
        one_wall, one_cpu, one_size = _time(one, Path(tmp) / "one.html", args.repeat)
        n = len(json.loads((args.run_dir / "run.json").read_text())["records"])
        wall, cpu, size = _time(args.run_dir, Path(tmp) / "all.html", args.repeat)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"imports (matplotlib, jinja2): {imports:.2f} s")
    print(f"1 scenario : {one_size / 1e6:6.3f} MB  {one_wall:6.2f} s wall  {one_cpu:6.2f} s CPU")
    print(f"{n} scenarios: {size / 1e6:6.3f} MB  {wall:6.2f} s wall  {cpu:6.2f} s CPU")
    print(
        f"ratio: {wall / one_wall:.1f}x the one-scenario time, "
        f"{(wall - one_wall) / max(1, n - 1) * 1000:.0f} ms and "
        f"{(size - one_size) / max(1, n - 1) / 1e3:.0f} KB per further scenario"
    )


if __name__ == "__main__":
    main()
