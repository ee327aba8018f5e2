"""Throughput of the local mesh: Bookinfo pages/s through the gateway, and httpbin
requests/s through the client sidecar, with the CPU each costs, against hey in the same go.

    python benchmarks/throughput.py [-c 12] [-n 4000] [--httpbin-c 32] [--rounds 3]

Starts one LocalMesh, warms it, then runs interleaved rounds of our load generator and
of ``hey`` (the reference: a Go client that costs the machine little) on the same URL,
same concurrency and count. For each run it reads the CPU time (``/proc/PID/stat``
utime + stime) of every process this one started, split into Envoys (the sidecars and
the gateway), the app hosts (Bookinfo's and httpbin's Python servers) and the load
generator (this process, or hey), and prints the medians over the rounds: rate, the
ratio ours/hey, and CPU milliseconds per request for each part. The ratio, not the
absolute rate, is what compares across machines. Exits 2 when hey is not installed.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from meshchaos.load import LoadPlan, LoadTarget, run_load
from meshchaos.mesh.local import LocalMesh

HEY_TIMEOUT = 600.0
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cpu:
    """CPU seconds by part, at one moment."""

    envoy: float
    apps: float
    self_: float

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.envoy - other.envoy, self.apps - other.apps, self.self_ - other.self_)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0  # gone between the listing and the read: its time is lost either way
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _is_envoy(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe").rsplit("/", 1)[-1].startswith("envoy")
    except OSError:
        return False


def cpu_now(skip: set[int]) -> Cpu:
    """CPU so far of this process and every descendant but ``skip`` (the reference client)."""
    envoy = apps = 0.0
    for pid in _descendants(os.getpid()):
        if pid in skip:
            continue
        if _is_envoy(pid):
            envoy += _cpu_seconds(pid)
        else:
            apps += _cpu_seconds(pid)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return Cpu(envoy, apps, own.ru_utime + own.ru_stime)


@dataclass(frozen=True)
class Run:
    rate: float
    cpu: Cpu
    requests: int

    def per_request_ms(self, part: str) -> float:
        return 1000 * float(getattr(self.cpu, part)) / self.requests


def ours(target: LoadTarget, concurrency: int, requests: int) -> Run:
    before = cpu_now(set())
    result = run_load(target, LoadPlan(concurrency=concurrency, requests=requests))
    used = cpu_now(set()) - before
    bad = {k: v for k, v in result.status_counts().items() if k != 200}
    if bad:
        raise SystemExit(f"non-200 answers through the mesh: {bad}")
    return Run(result.rps, used, result.count)


def hey(target: LoadTarget, concurrency: int, requests: int) -> Run:
    argv = ["hey", "-c", str(concurrency), "-n", str(requests)]
    if target.proxy:
        argv += ["-x", target.proxy]
    before = cpu_now(set())
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen([*argv, target.url], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=HEY_TIMEOUT)
    used = cpu_now({proc.pid}) - before
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    hey_cpu = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    if proc.returncode != 0:
        raise SystemExit(f"hey exited {proc.returncode}:\n{out}")
    if re.search(r"\[(?!200\])\d{3}\]\s+\d+ responses", out):
        raise SystemExit(f"non-200 answers through the mesh (hey):\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise SystemExit(f"cannot read hey's output:\n{out}")
    return Run(float(rps.group(1)), Cpu(used.envoy, used.apps, hey_cpu), requests)


def _median(runs: list[Run], what: str) -> float:
    if what == "rate":
        return statistics.median(r.rate for r in runs)
    return statistics.median(r.per_request_ms(what) for r in runs)


def report(name: str, mine: list[Run], ref: list[Run]) -> None:
    rate, ref_rate = _median(mine, "rate"), _median(ref, "rate")
    print(f"\n{name}: ours {rate:,.0f}/s, hey {ref_rate:,.0f}/s, ratio {rate / ref_rate:.2f}")
    print("  CPU ms per request      envoys    apps   load generator")
    for label, runs in (("ours", mine), ("hey", ref)):
        print(
            f"  {label:<22}{_median(runs, 'envoy'):8.2f}{_median(runs, 'apps'):8.2f}"
            f"{_median(runs, 'self_'):10.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--concurrency", type=int, default=12, help="Bookinfo (suite: 12)")
    parser.add_argument("-n", "--requests", type=int, default=4_000)
    parser.add_argument("--httpbin-c", type=int, default=32, help="httpbin (suite: 32)")
    parser.add_argument("--httpbin-n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("hey") is None:
        print("hey is not installed: apt-get install -y hey", file=sys.stderr)
        return 2
    with LocalMesh.start() as mesh:
        page = LoadTarget(mesh.gateway_url() + "/productpage")
        client = mesh.client()
        status = LoadTarget(client.service_url("httpbin", 8000, "/status/200"), client.proxy_url)
        for target in (page, status):  # warm: connections, app workers, Envoy's caches
            run_load(target, LoadPlan(concurrency=args.concurrency, requests=500))
        runs: dict[str, list[Run]] = {"page": [], "page-hey": [], "bin": [], "bin-hey": []}
        for _ in range(args.rounds):  # interleaved: a shared 2-core box drifts
            runs["page"].append(ours(page, args.concurrency, args.requests))
            runs["page-hey"].append(hey(page, args.concurrency, args.requests))
            runs["bin"].append(ours(status, args.httpbin_c, args.httpbin_n))
            runs["bin-hey"].append(hey(status, args.httpbin_c, args.httpbin_n))
    print(f"{os.cpu_count()} cores; medians of {args.rounds} rounds")
    report(f"Bookinfo /productpage, c={args.concurrency}", runs["page"], runs["page-hey"])
    report(f"httpbin /status/200 from the client, c={args.httpbin_c}", runs["bin"], runs["bin-hey"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
