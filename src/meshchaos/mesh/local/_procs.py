"""Find a local mesh's processes by command line, in ``/proc`` (for sweeps without state).

Every process of a local mesh names its state dir on its command line: each Envoy its
bootstrap (``-c DIR/proxies/NAME/bootstrap.json``), each app host ``--state-dir DIR``, and
``meshchaos up --state-dir DIR`` too. Only Envoys and Python running meshchaos count, so a
``tail -f`` of a log, an editor or the shell running ``down`` is never taken for the mesh.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from meshchaos.mesh.local.state import proc_cmdline, proc_start_ticks

__all__ = ["looks_like_ours", "processes_naming"]


def _is_mesh_program(argv: Sequence[str]) -> bool:
    """Envoy, or Python running meshchaos (the app host and its workers, the CLI)."""
    if not argv:
        return False
    prog = Path(argv[0]).name
    if prog == "envoy" or prog == "meshchaos":
        return True
    if not prog.startswith("python"):
        return False
    if len(argv) > 1 and Path(argv[1]).name == "meshchaos":  # the console script
        return True
    return len(argv) > 2 and argv[1] == "-m" and argv[2].split(".")[0] == "meshchaos"


def _names_dir(pid: int, argv: Sequence[str], state_dir: Path) -> bool:
    """True when an argument of ``argv`` is ``state_dir`` or a path inside it.

    Relative arguments are read against the process's working directory, so ``up
    --state-dir st`` started in the parent of ``st`` is found too.
    """
    roots = {os.path.normpath(state_dir.absolute()), os.path.realpath(state_dir)}
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = "/"
    for arg in argv[1:]:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if not value or value.startswith("-"):
            continue
        path = os.path.normpath(os.path.join(cwd, value))
        for candidate in {path, os.path.realpath(path)}:
            if any(candidate == r or candidate.startswith(r.rstrip("/") + "/") for r in roots):
                return True
    return False


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def _ancestors() -> set[int]:
    """This process and its ancestors: a sweep never kills the shell that runs it."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        pid = _parent(pid)
    return out


def looks_like_ours(pid: int, state_dir: Path) -> bool:
    """True when ``pid`` is an Envoy or meshchaos process whose command line names ``state_dir``."""
    argv = proc_cmdline(pid)
    return _is_mesh_program(argv) and _names_dir(pid, argv, state_dir)


def processes_naming(state_dir: Path) -> list[tuple[int, int]]:
    """(pid, start ticks) of the live Envoys and meshchaos processes naming ``state_dir``.

    Read from ``/proc/*/cmdline``: Envoys name their bootstrap inside the state dir, app
    hosts carry ``--state-dir``, and so does ``meshchaos up --state-dir``. The meshchaos
    process that started them (their parent) counts too, since ``meshchaos up`` without
    ``--state-dir`` does not name its dir. Never this process or its ancestors.
    """
    skip = _ancestors()
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        pid = int(entry.name)
        ticks = proc_start_ticks(pid)
        if ticks is not None and looks_like_ours(pid, state_dir):
            found[pid] = ticks
    for pid in list(found):
        parent = _parent(pid)
        ticks = proc_start_ticks(parent)
        known = parent <= 1 or parent in skip or parent in found
        if not known and ticks is not None and _is_mesh_program(proc_cmdline(parent)):
            found[parent] = ticks
    return sorted(found.items())
