"""Our load generator vs hey, against one bare Envoy, in the same run.

    python benchmarks/load_vs_hey.py [-c 32] [-n 50000] [--delay 0.05]

Starts one Envoy (static config, --concurrency 1) with a direct_response route and
a fixed-delay fault route, runs hey and our generator (same -c, same -n) against
both, and prints each one's rps, the ratio ours/hey, and p50 over the delay.
Exits 2 when hey is not installed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys

from meshchaos.load import LoadPlan, LoadTarget, run_load
from meshchaos.load.bare_envoy import bare_envoy

HEY_TIMEOUT = 300.0


def hey(url: str, concurrency: int, requests: int) -> tuple[float, float]:
    """hey's (rps, p50 seconds)."""
    out = subprocess.run(
        ["hey", "-c", str(concurrency), "-n", str(requests), url],
        capture_output=True,
        text=True,
        timeout=HEY_TIMEOUT,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%+ in ([\d.]+) secs", out)
    if rps is None or p50 is None:
        raise SystemExit(f"cannot read hey's output:\n{out}")
    return float(rps.group(1)), float(p50.group(1))


def ours(url: str, concurrency: int, requests: int, lean: bool) -> tuple[float, float]:
    result = run_load(
        LoadTarget(url), LoadPlan(concurrency=concurrency, requests=requests), lean=lean
    )
    bad = {k: v for k, v in result.status_counts().items() if k != 200}
    if bad:
        raise SystemExit(f"non-200 answers from Envoy: {bad}")
    return result.rps, result.percentile(50)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("-n", "--requests", type=int, default=50_000)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--delay-requests", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("hey") is None:
        print(
            "hey is not installed: apt-get install -y hey  (or: go install "
            "github.com/rakyll/hey@latest)",
            file=sys.stderr,
        )
        return 2
    c, n = args.concurrency, args.requests
    with bare_envoy(delay=args.delay, concurrency=1) as envoy:
        run_load(LoadTarget(envoy.direct_url), LoadPlan(concurrency=c, requests=2_000))  # warm
        # Interleaved rounds, medians: other work on a shared 2-core box is noisy.
        rounds: list[tuple[float, ...]] = []
        for _ in range(args.rounds):
            rounds.append(
                (
                    hey(envoy.direct_url, c, n)[0],
                    ours(envoy.direct_url, c, n, lean=True)[0],
                    ours(envoy.direct_url, c, min(n, 20_000), lean=False)[0],
                    hey(envoy.delay_url, c, args.delay_requests)[1],
                    ours(envoy.delay_url, c, args.delay_requests, lean=True)[1],
                    ours(envoy.delay_url, c, args.delay_requests, lean=False)[1],
                )
            )
        hey_rps, lean_rps, aio_rps, hey_p50, lean_p50, aio_p50 = (
            statistics.median(column) for column in zip(*rounds, strict=True)
        )
    d = args.delay
    print(
        f"bare Envoy 1.40 (--concurrency 1), -c {c}, -n {n}; delay route {d * 1000:.0f} ms; "
        f"median of {args.rounds} rounds"
    )
    print(f"{'':18}{'rps':>10}{'ours/hey':>10}{'p50 over delay':>18}")
    print(f"{'hey':18}{hey_rps:>10.0f}{'':>10}{(hey_p50 - d) * 1000:>15.2f} ms")
    print(
        f"{'meshchaos (lean)':18}{lean_rps:>10.0f}{lean_rps / hey_rps:>10.2f}"
        f"{(lean_p50 - d) * 1000:>15.2f} ms"
    )
    print(
        f"{'meshchaos aiohttp':18}{aio_rps:>10.0f}{aio_rps / hey_rps:>10.2f}"
        f"{(aio_p50 - d) * 1000:>15.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
