"""The backend registry: the one place that maps ``--backend`` to an implementation.

The CLI and the pytest plugin reach a backend only through here and the
:class:`~meshchaos.mesh.base.Mesh` it returns::

    backend = get_backend("local")
    mesh = backend.open(BackendOptions(state_dir=Path(".meshchaos"), run_id="r1"))
    # in another process:
    mesh = attach(Path(".meshchaos"))  # reads mesh.json, dispatches on its backend

Backends are imported when asked for, so choosing ``local`` never imports the kube
client, and a backend whose module is not installed says so as
:class:`~meshchaos.errors.BackendUnavailable`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from meshchaos.errors import BackendUnavailable, MeshError
from meshchaos.mesh.base import Mesh
from meshchaos.mesh.handle import MeshHandle, MeshNotRunning, read_handle

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendOptions",
    "Down",
    "attach",
    "check_backend",
    "down",
    "get_backend",
]

#: Backend name -> ``module:class`` of its :class:`Backend`.
BACKENDS: dict[str, str] = {
    "local": "meshchaos.mesh.local.backend:LocalBackend",
    "kind": "meshchaos.mesh.kube.backend:KindBackend",
    "cluster": "meshchaos.mesh.kube.backend:ClusterBackend",
}
_KUBE = ("kind", "cluster")


@dataclass(frozen=True)
class BackendOptions:
    """Everything a backend may need to open a mesh; each uses the fields it knows."""

    state_dir: Path
    run_id: str
    worker: str = "main"  # the xdist worker id: meshes of two workers never collide
    envoy_concurrency: int | None = None  # None: the backend's default (local 1, Istio 2)
    kube_context: str | None = None
    allow_context: bool = False
    reuse_cluster: bool = False
    keep_cluster: bool = False
    kubeconfig: Path | None = None
    gateway_url: str | None = None  # cluster: the gateway's base URL, when its Service has none
    deadline_s: float = 900.0


@dataclass(frozen=True)
class Down:
    """What :meth:`Backend.down` found and did."""

    found: bool  # there was a mesh (or its state, readable or not)
    owner_stopped: bool = False  # a live owner stopped on SIGTERM (or, forced, SIGKILL)
    swept: tuple[int, ...] = ()  # pids killed: a dead owner's leftovers, or by command line
    unreadable: str = ""  # force: why the state could not be used (empty if it could)


@runtime_checkable
class Backend(Protocol):
    """One kind of mesh: how to start one, find a running one, and stop one."""

    name: str

    def open(self, options: BackendOptions) -> Mesh:
        """Start a mesh and return it once it serves (``mesh.startup`` says how it went)."""
        ...

    def attach(self, handle: MeshHandle) -> Mesh:
        """The mesh another process runs, found through its handle."""
        ...

    def down(self, state_dir: Path, *, force: bool = False) -> Down:
        """Stop the mesh recorded in ``state_dir`` from any process and remove its state.
        No mesh there is ``Down(found=False)``, not an error."""
        ...


def check_backend(name: str) -> None:
    """Check, in seconds, that backend ``name`` can start on this machine: for ``kind``
    and ``cluster`` the tools they need first
    (:func:`meshchaos.mesh.kube.prereqs.check_prerequisites`, one
    :class:`~meshchaos.errors.PrerequisiteMissing` naming every missing tool), then that
    the backend's module is there (:func:`get_backend`). ``local`` needs nothing."""
    if name not in BACKENDS:
        raise MeshError(f"unknown backend {name!r}; expected one of: {', '.join(BACKENDS)}")
    if name in _KUBE:
        from meshchaos.mesh.kube._runner import SubprocessRunner
        from meshchaos.mesh.kube.prereqs import check_prerequisites

        check_prerequisites(SubprocessRunner(), name)
    get_backend(name)


def get_backend(name: str) -> Backend:
    """The backend called ``name``. Unknown names are a :class:`MeshError`; a backend
    whose module is not installed or not built yet is :class:`BackendUnavailable`."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise MeshError(
            f"unknown backend {name!r}; expected one of: {', '.join(BACKENDS)}"
        ) from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the backend's own module missing means "not available"; a missing
        # dependency inside it is a broken install and keeps its traceback.
        if exc.name != module_name:
            raise
        raise BackendUnavailable(
            f"the {name} backend is not available yet ({module_name} is not part of this "
            "meshchaos); use --backend local for the embedded Envoy mesh"
        ) from None
    backend: Backend = getattr(module, attr)()
    return backend


def attach(state_dir: Path) -> Mesh:
    """The mesh another process runs with its handle in ``state_dir``, of whatever
    backend wrote it. No mesh there is :class:`~meshchaos.mesh.handle.MeshNotRunning`,
    with how to start one."""
    handle = read_handle(state_dir)
    return get_backend(handle.backend).attach(handle)


def down(state_dir: Path, *, force: bool = False) -> Down:
    """Stop the mesh in ``state_dir``, whatever its backend (read from its handle; the
    local backend when there is no usable handle, since only it leaves processes behind
    without one). ``force`` also sweeps a mesh whose state is unreadable."""
    name = "local"
    try:
        name = read_handle(state_dir, check_owner=False).backend
    except MeshNotRunning:
        pass
    except MeshError:
        if not force:
            raise
    return get_backend(name).down(state_dir, force=force)
