"""The wheel job: meshchaos as a user gets it, from an empty directory.

    python tests/wheel/run_wheel_job.py

Builds the wheel from this checkout, installs it (not editable) into a fresh venv, and
from an empty directory, with only that venv:

1. ``meshchaos up`` serves ``/productpage`` through the gateway, ``meshchaos down``
   stops it and leaves no process behind;
2. ``meshchaos predict -f my-policy.yaml`` answers for a policy file of the user's own;
3. a test file of the user's own (``project/test_my_mesh.py``) passes with the
   ``chaos`` fixture and a policy directory of its own, and a lying one
   (``project/test_my_lie.py``) fails with a clear verdict.

Every step is bounded by a deadline; temp dirs and processes are cleaned up whatever
happens. Exits 0 when every step passed, 1 otherwise.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parent / "project"
UP_DEADLINE = 60.0
STEP_DEADLINE = 600.0


def run(cmd: Sequence[str | Path], cwd: Path, *, timeout: float = STEP_DEADLINE) -> str:
    """Run ``cmd`` (no shell); its output, or an error with the output if it failed."""
    done = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_clean_env(),
        check=False,
    )
    out = done.stdout + done.stderr
    if done.returncode != 0:
        raise StepFailed(f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{out[-4000:]}")
    return out


def _clean_env() -> dict[str, str]:
    # Nothing of this checkout may leak in: no PYTHONPATH, no active venv.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class StepFailed(Exception):
    pass


def build_and_install(work: Path) -> Path:
    """The wheel, installed into a fresh venv; that venv's bin directory."""
    dist = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, REPO], work)
    (wheel,) = dist.glob("meshchaos-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], work)
    run([venv / "bin" / "pip", "install", "-q", wheel], work)
    return venv / "bin"


def check_up_and_down(bin_dir: Path, empty: Path) -> str:
    """``meshchaos up`` serves /productpage; ``meshchaos down`` stops it, nothing left."""
    up = subprocess.Popen(
        [str(bin_dir / "meshchaos"), "up"],
        cwd=empty,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_clean_env(),
        start_new_session=True,
    )
    try:
        url = _wait_for_gateway(up, time.monotonic() + UP_DEADLINE)
        status, body = _get(url)
        if status != 200 or b"<title>Simple Bookstore App</title>" not in body:
            raise StepFailed(f"GET {url}: {status}, not the Bookinfo product page")
        out = run([bin_dir / "meshchaos", "down"], empty, timeout=60)
        up.wait(timeout=30)
        left = _processes_under(empty)
        if left:
            raise StepFailed(f"after meshchaos down, still running: {left}")
        return f"up served {url} (200), down: {out.strip()}"
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=10)


def _wait_for_gateway(up: subprocess.Popen[str], deadline: float) -> str:
    assert up.stdout is not None
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:
            raise StepFailed("meshchaos up exited before it was ready:\n" + "".join(seen))
        seen.append(line)
        if line.startswith("mesh ready") and "gateway http://127.0.0.1:" in line:
            return line.split("gateway ", 1)[1].split()[0]
    raise StepFailed(f"meshchaos up not ready within {UP_DEADLINE:.0f} s:\n" + "".join(seen))


def _get(url: str) -> tuple[int, bytes]:
    hostport, _, path = url.removeprefix("http://").partition("/")
    host, port = hostport.split(":")
    if host != "127.0.0.1":
        raise StepFailed(f"refusing to send to {host}: loopback only")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/" + path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _processes_under(directory: Path) -> list[str]:
    """Command lines of processes whose working directory is ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if Path(os.readlink(proc / "cwd")) == directory:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def check_predict(bin_dir: Path, empty: Path) -> str:
    policy = empty / "my-policy.yaml"
    shutil.copy(PROJECT / "my-policies" / "my-httpbin-abort.yaml", policy)
    out = run(
        [
            bin_dir / "meshchaos",
            "predict",
            "-f",
            policy.name,
            "--path",
            "http://httpbin:8000/status/200",
            "--from",
            "client",
        ],
        empty,
        timeout=60,
    )
    if "status:503" not in out or "0.3" not in out:
        raise StepFailed(f"predict did not give the 30% abort:\n{out}")
    return "predict -f my-policy.yaml: " + out.strip().splitlines()[-1]


def check_user_tests(bin_dir: Path, empty: Path) -> str:
    shutil.copytree(PROJECT, empty, dirs_exist_ok=True)
    pytest = bin_dir / "pytest"
    out = run([pytest, "-p", "no:cacheprovider", "test_my_mesh.py"], empty)
    lie = subprocess.run(
        [str(pytest), "-p", "no:cacheprovider", "test_my_lie.py"],
        cwd=empty,
        capture_output=True,
        text=True,
        timeout=STEP_DEADLINE,
        env=_clean_env(),
        check=False,
    )
    verdict = "share of status:503: expected 0.100"
    if lie.returncode != 1 or "policy deviation" not in lie.stdout or verdict not in lie.stdout:
        raise StepFailed(f"the lying test should fail with '{verdict}':\n{lie.stdout[-4000:]}")
    passed = out.strip().splitlines()[-1]
    return f"user tests: {passed}; the lying test failed as it must ({verdict} ...)"


def main() -> int:
    steps: list[tuple[str, Callable[[Path, Path], str]]] = [
        ("meshchaos up/down", check_up_and_down),
        ("meshchaos predict -f", check_predict),
        ("user test files", check_user_tests),
    ]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="meshchaos-wheel-") as tmp:
        work = Path(tmp)
        print("wheel job: building and installing the wheel into a fresh venv", flush=True)
        bin_dir = build_and_install(work)
        for name, step in steps:
            empty = work / name.replace(" ", "-").replace("/", "-")
            empty.mkdir()
            try:
                print(f"ok   {name}: {step(bin_dir, empty)}", flush=True)
            except (StepFailed, subprocess.TimeoutExpired) as exc:
                failed += 1
                print(f"FAIL {name}: {exc}", flush=True)
    print(f"wheel job: {len(steps) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
