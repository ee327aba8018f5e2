"""The ``kind`` and ``cluster`` backends of the registry (:mod:`meshchaos.mesh.registry`).

``KindBackend.open``: prerequisites, the kind cluster (:mod:`.kind`), the pinned Istio
installed and ready (:mod:`.istio`), leftovers of earlier runs swept, the apps deployed
in a namespace of this run and worker, then the :class:`~meshchaos.mesh.base.Mesh`
(``KubeMesh``). ``ClusterBackend.open``: the same on a cluster it did not create, behind
the context fence (:mod:`.existing`), installing nothing. Both write ``mesh.json`` with
what ``attach`` and ``down`` need (kubeconfig, context, namespace), so another process
finds the mesh without any state of ours but that file and the private kubeconfig.

Whatever is created is undone, in reverse, the moment a later step fails: the namespace,
then the cluster (kind, when this run created it and ``--keep-cluster`` was not given).
"""

from __future__ import annotations

import dataclasses
import importlib
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshchaos.errors import BackendUnavailable, MeshError
from meshchaos.mesh.base import Mesh, Startup
from meshchaos.mesh.kube._kubectl import Deadline, Kube
from meshchaos.mesh.kube._runner import Runner, SubprocessRunner
from meshchaos.mesh.kube.existing import check_context, find_gateway_url, private_kubeconfig
from meshchaos.mesh.kube.istio import (
    IstioInfo,
    IstioUnsupported,
    ensure_istioctl,
    install_istio,
    judge_istio,
    read_istio_info,
    wait_for_istio,
    webhook_policies,
)
from meshchaos.mesh.kube.kind import DEFAULT_CLUSTER, KindCluster, KindLifecycle, KindRefused
from meshchaos.mesh.kube.options import KubeOptions
from meshchaos.mesh.kube.pins import ISTIO_VERSION
from meshchaos.mesh.kube.prereqs import check_prerequisites, container_engine

if TYPE_CHECKING:
    from meshchaos.mesh.kube.kubemesh import KubeMesh

__all__ = ["ClusterBackend", "KindBackend", "KubeParts", "namespace_for"]

KUBECONFIG_FILE = "kubeconfig"
HANDLE_FILE = "mesh.json"
# Deleting a namespace waits for its pods to go (finalizers, grace periods).
DELETE_DEADLINE_S = 180.0


def _baseline() -> list[Any]:
    from meshchaos.istio.parse import load_files
    from meshchaos.manifests import baseline_paths

    return list(load_files(baseline_paths()))


@dataclass(frozen=True)
class KubeParts:
    """What the backends hand over to (helper K's modules and the load agent), by name:
    the real ones are imported when first used, tests pass fakes."""

    kube_api: Callable[[Path, str], Any]  # KubeApi(kubeconfig, context)
    deploy_apps: Callable[..., None]  # (api, namespace, run_id, *, deadline, worker, ...)
    kube_mesh: Callable[..., KubeMesh]  # KubeMesh(api, namespace, gateway_url, run_id, istio, ...)
    sweep_leftovers: Callable[[Any], list[str]]  # (api) -> what was removed
    delete_namespace: Callable[..., object]  # (api, namespace, *, deadline)
    agent_files: Callable[[], dict[str, str]]  # file name -> source, for the ConfigMap
    write_handle: Callable[[Path, dict[str, Any]], None]
    read_handle: Callable[[Path], dict[str, Any] | None]  # None: no handle there
    make_down: Callable[..., Any]  # meshchaos.mesh.registry.Down(found=...)
    baseline: Callable[[], list[Any]] = _baseline  # the Istio config in force from the start


def real_parts() -> KubeParts:
    """The product's own parts, imported now (so ``--backend local`` never imports them)."""

    def attr(module: str, name: str) -> Any:
        return getattr(importlib.import_module(module), name)

    handle_mod: Any = importlib.import_module("meshchaos.mesh.handle")

    def write_handle(state_dir: Path, data: dict[str, Any]) -> None:
        handle_mod.write_handle(state_dir, handle_mod.MeshHandle(**data))

    def read_handle(state_dir: Path) -> dict[str, Any] | None:
        try:
            h = handle_mod.read_handle(state_dir, check_owner=False)
        except handle_mod.MeshNotRunning:
            return None
        return {"backend": h.backend, "gateway_url": h.gateway_url, "backend_data": h.backend_data}

    return KubeParts(
        kube_api=attr("meshchaos.mesh.kube.api", "KubeApi"),
        deploy_apps=attr("meshchaos.mesh.kube.apps", "deploy_apps"),
        kube_mesh=attr("meshchaos.mesh.kube.kubemesh", "KubeMesh"),
        sweep_leftovers=attr("meshchaos.mesh.kube.safety", "sweep_leftovers"),
        delete_namespace=attr("meshchaos.mesh.kube.apps", "delete_namespace"),
        agent_files=attr("meshchaos.load.agent", "agent_files"),
        baseline=_baseline,
        write_handle=write_handle,
        read_handle=read_handle,
        make_down=attr("meshchaos.mesh.registry", "Down"),
    )


def namespace_for(run_id: str, worker: str) -> str:
    """``meshchaos-<run id>-<worker>`` as a valid namespace name (DNS label, <= 63): the
    apps' own rule (:func:`meshchaos.mesh.kube.apps.namespace_name`), so the backend and
    the mesh it hands over to never disagree on the name."""
    from meshchaos.mesh.kube.apps import namespace_name

    return namespace_name(run_id, worker)


class _KubeBackend:
    """What both backends share: the hand-over to the apps and the mesh, attach and down."""

    name = ""

    def __init__(
        self,
        runner: Runner | None = None,
        *,
        parts: KubeParts | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.runner: Runner = runner or SubprocessRunner()
        self._parts = parts
        self.env = env

    @property
    def parts(self) -> KubeParts:
        return self._resolve_parts()

    def _resolve_parts(self) -> KubeParts:
        """The parts, imported on first use; ``open`` calls this first, so a part that
        cannot be imported fails before anything is created."""
        if self._parts is None:
            self._parts = real_parts()
        return self._parts

    def _hand_over(
        self,
        options: KubeOptions,
        kube: Kube,
        info: IstioInfo,
        gateway_url: str,
        *,
        deadline: Deadline,
        cluster: KindCluster | None,
        delete_cluster: bool,
        gateway_host: str | None,
        undo: list[Callable[[], None]],
    ) -> KubeMesh:
        p = self.parts
        started = time.monotonic()
        api = p.kube_api(kube.kubeconfig, kube.context)
        swept = p.sweep_leftovers(api)
        namespace = namespace_for(options.run_id, options.worker)

        def delete_ns() -> None:
            p.delete_namespace(api, namespace, deadline=DELETE_DEADLINE_S)

        undo.append(delete_ns)
        p.deploy_apps(
            api,
            namespace,
            options.run_id,
            deadline=deadline.left(options.deadline_s),
            worker=options.worker,
            revision=info.revision,
            agent_files=p.agent_files(),
        )
        mesh = p.kube_mesh(
            api,
            namespace,
            gateway_url,
            options.run_id,
            info,
            owner=True,
            backend=self.name,
            gateway_host=gateway_host,
        )
        undo.append(mesh.close)  # its own namespace delete; the one above then finds none
        # The same starting config as the local mesh: Bookinfo's gateway and the
        # DestinationRules with version subsets, in force before any scenario.
        mesh.apply(p.baseline())
        notes = [f"swept namespace {ns}, left by a crashed run" for ns in swept or ()]
        mesh.startup = Startup(
            time.monotonic() - started,
            (*info.warnings, *notes),
            # Sidecars run the proxy of the Istio release (istio/proxyv2 of that tag).
            versions={"istio": info.version, "envoy": None},
            settings=info.as_dict(),
        )
        data = {
            "cluster": cluster.name if cluster else None,
            "kubeconfig": str(kube.kubeconfig),
            "context": kube.context,
            "namespace": namespace,
            "run_id": options.run_id,
            "gateway_host": gateway_host,
            # Whether `meshchaos down` deletes the kind cluster too (created by this run,
            # not kept); a reused or kept cluster stays.
            "delete_cluster": delete_cluster,
        }
        handle = {
            "backend": self.name,
            "gateway_url": gateway_url,
            "clients": {},
            "owner_pid": None,  # nothing of ours runs on the host: the mesh lives in the cluster
            "backend_data": data,
        }
        p.write_handle(options.state_dir, handle)
        return mesh

    def attach(self, handle: Any) -> Mesh:
        """The mesh another process opened, from its ``mesh.json`` (``owner=False``: this
        process never deletes it)."""
        bd: dict[str, Any] = dict(handle.backend_data)
        kubeconfig, context = Path(bd["kubeconfig"]), str(bd["context"])
        kube = Kube(self.runner, kubeconfig, context)
        deadline = Deadline(120, f"attaching to the {self.name} mesh")
        info = judge_istio(read_istio_info(kube, deadline=deadline))
        return self.parts.kube_mesh(
            self.parts.kube_api(kubeconfig, context),
            str(bd["namespace"]),
            handle.gateway_url,
            str(bd["run_id"]),
            info,
            owner=False,
            backend=self.name,
            gateway_host=bd.get("gateway_host"),
        )

    def down(self, state_dir: Path, *, force: bool = False) -> Any:
        """Delete the run's namespace and (kind, when this run created it and it was not
        kept) the cluster; then the handle. No handle there is ``Down(found=False)``."""
        p = self.parts
        handle = p.read_handle(state_dir)
        if handle is None:
            return p.make_down(found=False)
        bd = handle["backend_data"]
        kubeconfig, context = Path(bd["kubeconfig"]), str(bd["context"])
        errors: list[str] = []
        try:
            p.delete_namespace(
                p.kube_api(kubeconfig, context), str(bd["namespace"]), deadline=DELETE_DEADLINE_S
            )
        except MeshError as exc:
            errors.append(str(exc))
        if bd.get("cluster") and bd.get("delete_cluster"):
            cluster = KindCluster(str(bd["cluster"]), kubeconfig, created=True)
            try:
                KindLifecycle(self.runner).delete(cluster)
                kubeconfig.unlink(missing_ok=True)
            except MeshError as exc:
                errors.append(str(exc))
        if errors and not force:
            raise MeshError("; ".join(errors) + f" (the handle in {state_dir} is kept)")
        (Path(state_dir) / HANDLE_FILE).unlink(missing_ok=True)
        return p.make_down(found=True, unreadable="; ".join(errors))


def _undo_all(undo: list[Callable[[], None]], exc: BaseException) -> None:
    """Run the undo steps LIFO; each failure is noted on ``exc``, none hides it."""
    for step in reversed(undo):
        try:
            step()
        except Exception as failed:  # the original error matters more; keep both
            exc.add_note(f"while undoing after that error: {failed}")


class KindBackend(_KubeBackend):
    """``--backend kind``: a kind cluster with the pinned Istio, created or reused."""

    name = "kind"

    def __init__(
        self,
        runner: Runner | None = None,
        *,
        parts: KubeParts | None = None,
        env: Mapping[str, str] | None = None,
        cluster_name: str = DEFAULT_CLUSTER,
        istioctl: Callable[[Runner], str] | None = None,
    ) -> None:
        super().__init__(runner, parts=parts, env=env)
        self.cluster_name = cluster_name
        self._istioctl = istioctl or (lambda r: ensure_istioctl(r, env=self.env))

    def open(self, options: KubeOptions) -> Mesh:
        """The mesh on kind, up and serving; see the module docstring for the steps."""
        self._resolve_parts()
        check_prerequisites(self.runner, "kind", env=self.env)
        if options.worker != "main" and not options.reuse_cluster:
            raise BackendUnavailable(
                f"--backend kind under xdist (worker {options.worker}): the workers share one "
                "cluster, so create it first (`meshchaos up --backend kind --keep-cluster`), "
                "then run with --reuse-cluster"
            )
        deadline = Deadline(options.deadline_s, "starting --backend kind")
        kubeconfig = Path(options.state_dir) / KUBECONFIG_FILE
        engine = container_engine(self.env)
        lifecycle = KindLifecycle(self.runner, engine=engine)
        owned = not options.reuse_cluster
        delete_cluster = owned and not options.keep_cluster
        undo: list[Callable[[], None]] = []
        if delete_cluster:
            # Registered before create: a create that fails half-way leaves nodes behind.
            # Our name was free before (up() checks), so deleting it harms nobody.
            stub = KindCluster(self.cluster_name, kubeconfig, created=True)
            undo.append(lambda: lifecycle.delete(stub))
        try:
            cluster = lifecycle.up(
                self.cluster_name, kubeconfig, reuse=options.reuse_cluster, deadline=deadline
            )
            kube = Kube(self.runner, kubeconfig, cluster.context)
            running = None if owned else self._pinned_istio(kube, deadline)
            if running is None:
                install_istio(kube, self._istioctl(self.runner), deadline=deadline)
            wait_for_istio(kube, deadline=deadline)
            info = judge_istio(running or read_istio_info(kube, deadline=deadline))
            mesh = self._hand_over(
                options,
                kube,
                info,
                cluster.gateway_url,
                deadline=deadline,
                cluster=cluster,
                delete_cluster=delete_cluster,
                gateway_host=None,
                undo=undo,
            )
        except KindRefused:
            raise  # refused before anything was created: nothing to undo, nothing of theirs
        except BaseException as exc:
            _undo_all(undo, exc)
            raise
        if delete_cluster:
            # KubeMesh owns the namespace, the backend the cluster: closing deletes both.
            mesh.after_close.append(lambda: lifecycle.delete(cluster))
        return mesh

    def _pinned_istio(self, kube: Kube, deadline: Deadline) -> IstioInfo | None:
        """What a reused cluster runs, when it is the pinned Istio (else install it)."""
        try:
            info = read_istio_info(kube, deadline=deadline)
        except IstioUnsupported:
            return None
        return info if info.version == ISTIO_VERSION else None


class ClusterBackend(_KubeBackend):
    """``--backend cluster``: an existing cluster, by an allowed context; installs nothing."""

    name = "cluster"

    def open(self, options: KubeOptions) -> Mesh:
        """The mesh on the named cluster's own Istio; refuses what it cannot judge."""
        # The fence first: a refused context costs no command at all.
        context = check_context(
            options.kube_context, allow_context=options.allow_context, env=self.env
        )
        self._resolve_parts()
        check_prerequisites(self.runner, "cluster", env=self.env)
        deadline = Deadline(options.deadline_s, f"opening --backend cluster on {context!r}")
        kubeconfig = private_kubeconfig(
            self.runner,
            context,
            Path(options.state_dir) / KUBECONFIG_FILE,
            source=options.kubeconfig,
            deadline=deadline,
        )
        kube = Kube(self.runner, kubeconfig, context)
        info = judge_istio(read_istio_info(kube, deadline=deadline))
        policies = webhook_policies(kube, deadline)
        if not policies or not all(p.endswith(": Fail") for p in policies):
            found = "; ".join(policies) or "none found"
            warning = (
                f"Istio's validation webhooks do not all fail closed ({found}): meshchaos "
                "validates its own policies before applying them, others may slip through"
            )
            info = dataclasses.replace(info, warnings=(*info.warnings, warning))
        gateway_url = find_gateway_url(kube, explicit=options.gateway_url, deadline=deadline)
        host = urllib.parse.urlsplit(gateway_url).hostname
        undo: list[Callable[[], None]] = []
        try:
            return self._hand_over(
                options,
                kube,
                info,
                gateway_url,
                deadline=deadline,
                cluster=None,
                delete_cluster=False,
                gateway_host=host,
                undo=undo,
            )
        except BaseException as exc:
            _undo_all(undo, exc)
            raise
