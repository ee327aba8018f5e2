"""Helpers shared by the local mesh integration tests (no fixtures: see each module)."""

from __future__ import annotations

import http.client
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from meshchaos.mesh.local.state import MeshState, StateDir, is_same_process

TITLE = b"<title>Simple Bookstore App</title>"


def get(
    url_base: str, path: str, *, proxy: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One GET, directly or through an HTTP proxy (absolute-form URI)."""
    target = proxy or url_base
    host, port = target.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", url_base + path if proxy else path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def recorded_pids(state: MeshState) -> list[tuple[int, int]]:
    """(pid, start ticks) of every process a state records."""
    procs = [(p.pid, p.start_ticks) for p in state.proxies.values() if p.pid]
    return procs + [(h.pid, h.start_ticks) for h in state.hosts]


def listening_ports() -> set[int]:
    """Every TCP port in LISTEN state on this machine (IPv4 and IPv6)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def port_owners(ports: Iterable[int]) -> dict[int, set[int]]:
    """The pids holding a LISTEN socket on each of ``ports`` (from /proc: inode -> fd)."""
    wanted = set(ports)
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and port in wanted:
                inodes[f"socket:[{fields[9]}]"] = port
    owners: dict[int, set[int]] = {port: set() for port in inodes.values()}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                port = inodes.get(os.readlink(fd))
                if port is not None:
                    owners[port].add(int(proc.name))
        except OSError:
            continue  # gone meanwhile
    return owners


def held_by_mesh(ports: Iterable[int], state_dir: Path) -> dict[int, set[int]]:
    """Which of ``ports`` a process of the mesh in ``state_dir`` still listens on.

    A freed port may be handed by the OS to another test's mesh under xdist, so holding
    one is a leak only for a process whose command line names this state dir (Envoys
    name their bootstrap there, app hosts and their forked workers carry --state-dir).
    """
    mark = str(state_dir).encode()
    held: dict[int, set[int]] = {}
    for port, pids in port_owners(ports).items():
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if mark in cmdline:
                held.setdefault(port, set()).add(pid)
    return held


def state_ports(state: MeshState) -> set[int]:
    ports: set[int] = set()
    for p in state.proxies.values():
        ports.update(p.listeners.values())
        if p.admin:
            ports.add(int(p.admin.rsplit(":", 1)[1]))
        if p.app_port:
            ports.add(p.app_port)
    return ports


def wait_for(check, timeout: float = 10.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.02)


def all_gone(procs: Iterable[tuple[int, int]]) -> bool:
    return not any(is_same_process(pid, ticks) for pid, ticks in procs)


def load_state(path: Path) -> MeshState:
    state = StateDir(path).load()
    assert state is not None, f"no state in {path}"
    return state


def envoy_children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (to see that nothing outlives a killed owner)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                out.append(int(d.name))
    return out


__all__ = [
    "TITLE",
    "all_gone",
    "envoy_children_of",
    "get",
    "held_by_mesh",
    "listening_ports",
    "load_state",
    "os",
    "port_owners",
    "recorded_pids",
    "state_ports",
    "wait_for",
]


READY_DEADLINE = 30.0  # seconds for `meshchaos up` to print "mesh ready"


class UpOutput:
    """The output of a running ``meshchaos up``, read line by line on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.pump = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self.pump.start()

    def _pump(self, stream: Iterable[str]) -> None:
        for line in stream:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def text(self) -> str:
        return "".join(self.output)

    def wait_ready(self, deadline_s: float = READY_DEADLINE) -> None:
        """Block until "mesh ready" is printed; fail the test on exit or timeout."""
        import pytest

        deadline = time.monotonic() + deadline_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no 'mesh ready' within {deadline_s:g} s: {self.text()}")
            if line is None:
                pytest.fail(f"`meshchaos up` exited {self.proc.wait(5)}: {self.text()}")
            if line.startswith("mesh ready"):
                return
