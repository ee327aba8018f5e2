"""The load agent's entry script (``agent.py`` in its directory; see :mod:`meshchaos.load.agent`).

Run as ``python -I -S agent.py`` from a directory holding the files of
:func:`meshchaos.load.agent.agent_files`, with no meshchaos installed: it registers
the packages ``meshchaos`` and ``meshchaos.load`` with that directory as their path,
so the shipped modules import each other under their real names, then runs
:func:`meshchaos.load._agent_pod.main`. Keep this file parseable by older Pythons (3.6+):
it must be able to say that it needs 3.11.
"""

import json
import os
import sys

MIN_PYTHON = (3, 11)


def _register_packages(here: str) -> None:
    import importlib.machinery
    import importlib.util

    for name in ("meshchaos", "meshchaos.load"):
        if name not in sys.modules:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [here]
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
    sys.modules["meshchaos"].load = sys.modules["meshchaos.load"]  # type: ignore[attr-defined]


def run() -> int:
    if sys.version_info < MIN_PYTHON:
        need = ".".join(str(part) for part in MIN_PYTHON)
        error = f"the load agent needs Python >= {need}, this is {sys.version.split()[0]}"
        sys.stderr.write(f"meshchaos load agent: {error}\n")
        end = {"t": "end", "sent": 0, "elapsed_s": 0.0, "error": error}
        end.update({"stopped_by_deadline": False, "examples": {}, "events": []})
        sys.stdout.write(json.dumps(end) + "\n")
        return 1
    _register_packages(os.path.dirname(os.path.abspath(__file__)))
    from meshchaos.load._agent_pod import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
