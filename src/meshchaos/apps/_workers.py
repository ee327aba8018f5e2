"""Forked app workers behind one host process: import once, use every core.

Importing aiohttp costs ~0.4 s of CPU, on the critical path of a mesh start. With
``python -m meshchaos.apps.host --workers N`` the host imports everything once in its
main thread (no other thread exists yet, so forking is safe), then forks ``N`` workers.
Each worker runs the ordinary command loop on its own pair of pipes; the parent relays
the host protocol, splitting each command by instance. The parent keeps the one
protocol, so callers see a single host. Workers die with the parent (PR_SET_PDEATHSIG)
and on EOF of their command pipe.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
_EXIT_GRACE_S = 2.0


class _Worker:
    def __init__(self, pid: int, commands: IO[str], answers: IO[str]) -> None:
        self.pid = pid
        self.commands = commands
        self.answers = answers
        self.instances: set[str] = set()

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        try:
            self.commands.write(json.dumps(command, separators=(",", ":")) + "\n")
            self.commands.flush()
            line = self.answers.readline()
        except OSError as exc:
            return {"ok": False, "error": f"app worker {self.pid} is gone: {exc}"}
        if not line:
            return {"ok": False, "error": f"app worker {self.pid} died"}
        answer: dict[str, Any] = json.loads(line)
        return answer


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def fork_workers(count: int, serve: Callable[[], int]) -> list[_Worker]:
    """Fork ``count`` workers, each running ``serve()`` on its own stdin/stdout pipes."""
    workers: list[_Worker] = []
    parent = os.getpid()
    for _ in range(count):
        cmd_r, cmd_w = os.pipe()
        ans_r, ans_w = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                _die_with_parent(parent)
                os.dup2(cmd_r, 0)
                os.dup2(ans_w, 1)
                for fd in (cmd_r, cmd_w, ans_r, ans_w):
                    os.close(fd)
                for w in workers:  # earlier workers' pipes belong to the parent
                    w.commands.close()
                    w.answers.close()
                sys.stdin = os.fdopen(0, "r")
                sys.stdout = os.fdopen(1, "w")
                code = serve()
            finally:
                os._exit(code)
        os.close(cmd_r)
        os.close(ans_w)
        workers.append(_Worker(pid, os.fdopen(cmd_w, "w"), os.fdopen(ans_r, "r")))
    return workers


def _split(workers: list[_Worker], ids: list[str]) -> dict[int, list[str]]:
    """Instance ids by the worker that runs them (unknown ids: worker 0 answers)."""
    out: dict[int, list[str]] = {}
    for i in ids:
        owner = next((n for n, w in enumerate(workers) if i in w.instances), 0)
        out.setdefault(owner, []).append(i)
    return out


def _merge(answers: list[dict[str, Any]], key: str | None = None) -> dict[str, Any]:
    failed = [a for a in answers if not a.get("ok")]
    if failed:
        return failed[0]
    merged: dict[str, Any] = {"ok": True}
    if key is not None:
        merged[key] = {k: v for a in answers for k, v in a.get(key, {}).items()}
    return merged


def relay(workers: list[_Worker], command: Any) -> dict[str, Any]:
    """Carry out one host command across the workers; one answer, as a single host."""
    if not isinstance(command, dict):
        return workers[0].ask(command)
    cmd = command.get("cmd")
    if cmd == "start" and isinstance(command.get("instances"), list):
        groups: dict[int, list[Any]] = {}
        for inst in command["instances"]:
            iid = inst.get("id") if isinstance(inst, dict) else None
            owner = next((n for n, w in enumerate(workers) if iid in w.instances), None)
            if owner is None:  # a new instance goes to the least loaded worker
                load = [len(w.instances) + len(groups.get(n, [])) for n, w in enumerate(workers)]
                owner = load.index(min(load))
            groups.setdefault(owner, []).append(inst)
        answers = []
        for n, insts in groups.items():
            answer = workers[n].ask({**command, "instances": insts})
            if answer.get("ok"):
                workers[n].instances.update(answer.get("ports", {}))
            answers.append(answer)
        return _merge(answers, "ports") if answers else {"ok": True, "ports": {}}
    if cmd == "proxy" and isinstance(command.get("proxies"), dict):
        proxies = command["proxies"]
        return _merge(
            [
                workers[n].ask({**command, "proxies": {i: proxies[i] for i in ids}})
                for n, ids in _split(workers, list(proxies)).items()
            ]
        )
    if cmd == "stop" and isinstance(command.get("ids"), list):
        return _merge(
            [
                workers[n].ask({**command, "ids": ids})
                for n, ids in _split(workers, list(command["ids"])).items()
            ]
        )
    if cmd == "records" and isinstance(command.get("id"), str):
        owner = next(iter(_split(workers, [command["id"]])))
        return workers[owner].ask(command)
    if cmd == "ping":
        return _merge([w.ask(command) for w in workers])
    return workers[0].ask(command)


def run_relay(workers: list[_Worker]) -> int:
    """The parent's loop: stdin commands in, one merged answer each out, until EOF."""
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                command = json.loads(line)
            except ValueError as exc:
                answer: dict[str, Any] = {"ok": False, "error": f"bad JSON: {exc}"}
            else:
                answer = relay(workers, command)
            sys.stdout.write(json.dumps(answer, separators=(",", ":")) + "\n")
            sys.stdout.flush()
    finally:
        for w in workers:  # EOF on their command pipes: they shut down
            w.commands.close()
        deadline = time.monotonic() + _EXIT_GRACE_S
        pending = {w.pid for w in workers}
        while pending and time.monotonic() < deadline:
            for pid in list(pending):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    pending.discard(pid)
            time.sleep(0.01)
        for pid in pending:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return 0
