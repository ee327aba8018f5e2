"""Where manifests come from, and the baseline every mesh starts from.

The sample manifests (Bookinfo, httpbin, and the catalogue's Istio policies) ship inside
the package, under ``meshchaos/data``, and are read with :mod:`importlib.resources`, so
an installed wheel has everything a source checkout has. The repository's top-level
``manifests/`` is a link to that same folder, not a copy.

A policy name is looked up in one documented order (:func:`find_policy`):

1. an explicit path (absolute, or relative to the working directory) that exists;
2. each of the user's policy directories in turn (the ``meshchaos_policy_dirs`` ini
   option of the pytest plugin, or ``--policy-dir`` on the command line);
3. the packaged samples, ``meshchaos/data/istio``.

A name may leave out ``.yaml``. The baseline is what Bookinfo's install guide applies
before any task: the ingress Gateway with its VirtualService, and the version subsets of
every service. The local mesh applies it at start, and ``meshchaos predict`` assumes it,
so that a prediction and a mesh always start from the same state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from meshchaos.errors import ConfigInvalid, MeshChaosError, MeshError
from meshchaos.istio.model import Resource, resource_id
from meshchaos.istio.parse import load_files

__all__ = [
    "BASELINE",
    "PolicyNotFound",
    "baseline_paths",
    "data_dir",
    "find_policy",
    "load_policies",
    "merge",
    "sample_policies",
]

BASELINE: tuple[str, ...] = (
    "bookinfo/bookinfo-gateway.yaml",
    "bookinfo/destination-rule-all.yaml",
    "httpbin/destination-rule-httpbin.yaml",
)


class PolicyNotFound(MeshChaosError):
    """A policy name matched no file in any place of the lookup order."""


def data_dir() -> Path:
    """The packaged manifests (``meshchaos/data``) as a directory on disk.

    pip installs packages as plain files, so the resource root is a real path; a
    zipped install (which meshchaos does not support) is reported, not guessed around.
    """
    root = resources.files("meshchaos.data")
    if not isinstance(root, Path) or not (root / "bookinfo").is_dir():
        raise MeshError(
            f"meshchaos's packaged manifests are not on disk at {root}; reinstall meshchaos "
            "with pip (zipped installs are not supported)"
        )
    return root


def baseline_paths() -> list[Path]:
    """The baseline files every mesh and every prediction start from."""
    root = data_dir()
    return [root / rel for rel in BASELINE]


def sample_policies() -> list[Path]:
    """The packaged sample policies, by name."""
    return sorted((data_dir() / "istio").glob("*.yaml"))


def _candidates(name: str) -> list[str]:
    return [name] if name.endswith((".yaml", ".yml")) else [name, f"{name}.yaml"]


def find_policy(name: str | Path, policy_dirs: Sequence[Path] = ()) -> Path:
    """The file a policy name refers to, in the order the module docstring gives.

    Raises :class:`PolicyNotFound` naming every place looked in and the names known there.
    """
    path = Path(name)
    if path.is_absolute() or path.exists():
        if path.is_file():
            return path
        what = "is a directory, not a policy file" if path.is_dir() else "no such file"
        raise PolicyNotFound(f"{path}: {what}")
    places = [*policy_dirs, data_dir() / "istio"]
    for place in places:
        for candidate in _candidates(str(name)):
            if (place / candidate).is_file():
                return place / candidate
    raise PolicyNotFound(
        f"no policy file {str(name)!r}: not a path, and not in "
        + "; ".join(f"{place} ({_names(place)})" for place in places)
    )


def _names(place: Path, shown: int = 8) -> str:
    names = sorted(p.stem for p in place.glob("*.yaml"))
    if not names:
        return "empty"
    more = f", ... {len(names)} in all" if len(names) > shown else ""
    return "has " + ", ".join(names[:shown]) + more


def load_policies(names: Sequence[str | Path], policy_dirs: Sequence[Path] = ()) -> list[Resource]:
    """Parse the policies ``names`` refer to (paths or names, :func:`find_policy`), all or
    nothing: a name that matches no file and every validation problem of every file are
    reported together in one :class:`~meshchaos.errors.ConfigInvalid`."""
    problems: list[str] = []
    paths: list[Path] = []
    resources: list[Resource] = []
    for name in names:
        try:
            paths.append(find_policy(name, policy_dirs))
        except PolicyNotFound as exc:
            problems.append(str(exc))
    try:
        resources = load_files(paths)
    except ConfigInvalid as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigInvalid(problems)
    return resources


def merge(*layers: Iterable[Resource]) -> list[Resource]:
    """Resources as ``kubectl apply`` of each layer in turn leaves them: same kind,
    namespace and name replace the earlier one, in place; new ones go last."""
    merged: dict[str, Resource] = {}
    for layer in layers:
        for resource in layer:
            merged[resource_id(resource)] = resource
    return list(merged.values())
