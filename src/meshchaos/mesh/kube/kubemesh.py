"""KubeMesh: the Mesh protocol on a Kubernetes cluster with Istio, through the API only.

Config verbs: ``apply`` checks every resource first (meshchaos's validator, then a
server-side dry run, which runs Strict field validation and Istio's webhook) so nothing is
half-applied; records what each object replaces; applies DestinationRules before the
VirtualServices that use their subsets; and returns once every affected sidecar's
``config_dump`` shows the new content and a probe through the gateway converges. A
sidecar that never shows it is named in the error, and the apply is rolled back.

Queries read the sidecars through exec (``pilot-agent request GET stats|config_dump``).
Instance chaos deletes pods (grace 0) and scales Deployments; instances are pod names.
The owner deletes the run's namespace on close; an attached process never does.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Sequence
from typing import Any

from meshchaos.errors import MeshError, UnknownWorkload
from meshchaos.istio.model import Resource, resource_id
from meshchaos.load.plan import LoadPlan
from meshchaos.load.result import LoadResult
from meshchaos.mesh.base import Applied, CounterQuery, MeshClient, ProxyStatus
from meshchaos.mesh.kube import apps, expect, inmesh, istio_objects, probe, sync
from meshchaos.mesh.kube.api import KubeApi
from meshchaos.mesh.kube.safety import LeaseKeeper, check_owned, owned_selector, sweep_leftovers

__all__ = ["KubeMesh"]

SIDECAR = "istio-proxy"
GATEWAY = "istio-ingressgateway"
DEFAULT_SYNC_S = 60.0
DEFAULT_WAIT_S = 180.0


class KubeMesh:
    """Bookinfo, httpbin and the client in one namespace of a cluster (see the module)."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        gateway_url: str,
        run_id: str,
        istio: object,
        *,
        owner: bool,
        backend: str,
        gateway_host: str | None = None,
        gateway_namespace: str = "istio-system",
        sync_deadline: float = DEFAULT_SYNC_S,
        wait_deadline: float = DEFAULT_WAIT_S,
        probe_times: int = 3,
        poll: float = sync.POLL_S,
    ) -> None:
        ns = api.get("Namespace", namespace)
        check_owned({**ns, "kind": "Namespace"}, run_id)  # never drive a namespace not ours
        self.api = api
        self.namespace = namespace
        self.run_id = run_id
        self.istio = istio
        self.backend = backend
        self.owner = owner
        self.startup: Any = None
        self.gateway_host = gateway_host
        self.gateway_namespace = gateway_namespace
        self.sync_deadline = sync_deadline
        self.wait_deadline = wait_deadline
        self.probe_times = probe_times
        self.poll = poll
        self._gateway_url = gateway_url.rstrip("/")
        self._closed = False
        self._killed: dict[str, set[str]] = {}  # pod -> its address, until restarted
        self.swept: list[str] = []  # namespaces of crashed runs that create() deleted
        self.after_close: list[Callable[[], None]] = []  # owner only, run by close()
        self._lease = LeaseKeeper(api, namespace).start() if owner else None
        if owner:
            atexit.register(self.close)  # also when Ctrl-C ends the interpreter

    @classmethod
    def create(
        cls,
        api: KubeApi,
        run_id: str,
        gateway_url: str,
        istio: object,
        *,
        backend: str,
        worker: str = "main",
        gateway_host: str | None = None,
        revision: str | None = None,
        deadline: float = 900.0,
        agent_files: dict[str, str] | None = None,
        baseline: Sequence[Resource] = (),
        **options: Any,
    ) -> KubeMesh:
        """Sweep expired leftovers (:attr:`swept`), deploy the run's apps in
        ``meshchaos-<run>-<worker>``, own them, apply the ``baseline`` Istio config; on any
        failure, delete the namespace again."""
        swept = sweep_leftovers(api)  # what crashed runs left, by their expired leases
        namespace = apps.namespace_name(run_id, worker)
        apps.deploy_apps(
            api, namespace, run_id, deadline=deadline, worker=worker, revision=revision,
            agent_files=agent_files,
        )  # fmt: skip
        try:
            mesh = cls(
                api, namespace, gateway_url, run_id, istio, owner=True, backend=backend,
                gateway_host=gateway_host, **options,
            )  # fmt: skip
        except BaseException:
            apps.delete_namespace(api, namespace, deadline=DEFAULT_WAIT_S)
            raise
        mesh.swept = swept
        try:
            if baseline:
                mesh.apply(baseline)
        except BaseException:
            mesh.close()
            raise
        return mesh

    def __enter__(self) -> KubeMesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- config ------------------------------------------------------------------------------------
    def apply(self, resources: Sequence[Resource]) -> Applied:
        """Validate all, dry-run all, apply in order, then wait for content and probe."""
        resources = list(resources)
        istio_objects.validate(resources, self.namespace)
        objs = {resource_id(r): self._object(r) for r in resources}
        for obj in objs.values():
            self.api.apply(obj, dry_run=True)
        previous: dict[str, Resource | None] = {}
        for r in resources:
            previous[resource_id(r)] = self._current(r)
        done: list[Resource] = []
        try:
            for r in istio_objects.apply_order(resources):
                self.api.apply(objs[resource_id(r)])
                done.append(r)
            self._wait(resources, present=True)
        except BaseException as exc:
            self._rollback(done, previous, exc)
            raise
        versions = [str(self._current_version(r)) for r in resources]
        return Applied(tuple(resources), previous, ",".join(versions))

    def delete(self, applied: Applied) -> None:
        """Put back what ``applied`` replaced, VirtualServices first, and wait for it."""
        restored: list[Resource] = []
        removed: list[Resource] = []
        for r in istio_objects.delete_order(applied.resources):
            prev = applied.previous.get(resource_id(r))
            if prev is None:
                self._delete(r)
                removed.append(r)
            else:
                self.api.apply(self._object(prev))
                restored.append(prev)
        self._wait(restored, present=True)
        self._wait(removed, present=False)

    def resources(self) -> list[Resource]:
        out: list[Resource] = []
        for kind in istio_objects.APPLY_ORDER:
            for obj in self.api.list_objects(
                kind, self.namespace, label_selector=owned_selector(self.run_id)
            ):
                out.append(
                    istio_objects.from_object({**obj, "kind": kind}, f"cluster:{self.namespace}")
                )
        return out

    def _object(self, r: Resource) -> dict[str, Any]:
        return istio_objects.to_object(r, self.namespace, self.run_id, self.gateway_host)

    def _current(self, r: Resource) -> Resource | None:
        obj = self.api.find(r.kind, r.metadata.name, self.namespace)
        if obj is None:
            return None
        check_owned(obj, self.run_id)  # we will overwrite or delete it
        return istio_objects.from_object(obj, f"cluster:{self.namespace}")

    def _current_version(self, r: Resource) -> str:
        obj = self.api.find(r.kind, r.metadata.name, self.namespace) or {}
        return str((obj.get("metadata") or {}).get("resourceVersion", ""))

    def _delete(self, r: Resource) -> None:
        obj = self.api.find(r.kind, r.metadata.name, self.namespace)
        if obj is not None:
            check_owned(obj, self.run_id)
            self.api.delete(r.kind, r.metadata.name, self.namespace)

    def _rollback(
        self, done: list[Resource], previous: dict[str, Resource | None], exc: BaseException
    ) -> None:
        """Undo an apply that failed part way or never showed up; notes what could not be."""
        problems: list[str] = []
        for r in reversed(done):
            prev = previous.get(resource_id(r))
            try:
                if prev is None:
                    self._delete(r)
                else:
                    self.api.apply(self._object(prev))
            except MeshError as err:
                problems.append(f"{resource_id(r)}: {err}")
        note = "; rolled back" + (f", except: {'; '.join(problems)}" if problems else "")
        exc.add_note(note)

    def _wait(self, resources: Sequence[Resource], *, present: bool) -> None:
        if not resources:
            return
        wanted: dict[str, list[expect.Expectation]] = {}
        for r in resources:
            for caller_apps, exp in expect.expectations(r, self.namespace, present=present):
                for pod in self._pods_of_apps(caller_apps):
                    wanted.setdefault(pod, []).append(exp)
        sync.wait_for_config(
            self.api, self.namespace, wanted, deadline=self.sync_deadline, poll=self.poll
        )
        probe.converge(
            self._gateway_url,
            host=self.gateway_host,
            times=self.probe_times,
            deadline=self.sync_deadline,
            poll=self.poll,
        )

    def _pods_of_apps(self, app_names: set[str]) -> list[str]:
        pods = self.api.list_objects(
            "Pod", self.namespace, label_selector=owned_selector(self.run_id)
        )
        return sorted(
            p["metadata"]["name"]
            for p in pods
            if (p["metadata"].get("labels") or {}).get("app") in app_names
            and not p["metadata"].get("deletionTimestamp")
            and apps.is_ready(p)  # a pod still starting gets its config before Ready
        )

    # -- queries -----------------------------------------------------------------------------------
    def gateway_url(self) -> str:
        return self._gateway_url

    def load_targets(self) -> tuple[str, ...]:
        return (self._gateway_url,)

    def client(self, workload: str = "client") -> MeshClient:
        raise MeshError(f"no client proxy on this host: use run_load(plan, source={workload!r})")

    def _workload_pods(self, workload: str) -> list[tuple[str, str]]:
        """(namespace, pod) of a workload's live pods; the gateway's in its namespace."""
        if workload == GATEWAY:
            pods = self.api.list_objects(
                "Pod", self.gateway_namespace, label_selector="istio=ingressgateway"
            )
            return [
                (self.gateway_namespace, p["metadata"]["name"]) for p in pods if apps.is_ready(p)
            ]
        return [(self.namespace, name) for name in self.instances(workload)]

    def _stats(self, namespace: str, pod: str) -> dict[str, int]:
        # The gateway is shared: keep only its outbound clusters of this run's namespace.
        only = self.namespace if namespace != self.namespace else None
        return sync.read_stats(self.api, namespace, pod, only_namespace=only)

    def proxy_stats(self, workload: str) -> dict[str, int]:
        total: dict[str, int] = {}
        for ns, pod in self._workload_pods(workload):
            for k, v in self._stats(ns, pod).items():
                total[k] = total.get(k, 0) + v
        return total

    def counters(self, queries: Sequence[CounterQuery]) -> dict[CounterQuery, int]:
        """Each query summed over the replicas it names; a stat that none emits is an error."""
        cache: dict[str, list[dict[str, int]]] = {}

        def read(workload: str) -> list[dict[str, int]]:
            if workload not in cache:
                cache[workload] = [self._stats(ns, p) for ns, p in self._workload_pods(workload)]
            return cache[workload]

        return sync.sum_counters(queries, read, self._all_workloads)

    def _all_workloads(self, *, with_gateway: bool) -> list[str]:
        deps = self.api.list_objects(
            "Deployment", self.namespace, label_selector=owned_selector(self.run_id)
        )
        names = [d["metadata"]["name"] for d in deps if int(d["spec"].get("replicas", 1)) > 0]
        return sorted(names) + ([GATEWAY] if with_gateway else [])

    def status(self) -> list[ProxyStatus]:
        """Every sidecar of the run: pod, workload, newest route config version, alive."""
        sel = owned_selector(self.run_id)
        return sync.statuses(
            self.api,
            self.namespace,
            self.api.list_objects("Pod", self.namespace, label_selector=sel),
        )

    def instances(self, workload: str) -> list[str]:
        dep = self.api.find("Deployment", workload, self.namespace)
        if dep is None:
            deps = self.api.list_objects(
                "Deployment", self.namespace, label_selector=owned_selector(self.run_id)
            )
            raise UnknownWorkload(
                workload, [d["metadata"]["name"] for d in deps], where=f"in {self.namespace}"
            )
        return sorted(p["metadata"]["name"] for p in apps.pods_of(self.api, self.namespace, dep))

    # -- chaos -------------------------------------------------------------------------------------
    def kill(self, instance: str) -> None:
        """Delete the pod at once (grace 0), as a crashing pod would die."""
        pod = self.api.get("Pod", instance, self.namespace)
        check_owned({**pod, "kind": "Pod"}, self.run_id)
        self._killed[instance] = sync.pod_ips([pod])
        self.api.delete("Pod", instance, self.namespace, grace_seconds=0)

    def restart(self, instance: str) -> None:
        """Wait until the killed pod's replacement serves and the client's sidecar routes
        to it, and no longer to the killed pod's address."""
        workload = self._workload_of(instance)
        apps.wait_for_rollouts(
            self.api, self.namespace, [workload], deadline=self.wait_deadline, poll=self.poll
        )
        dep = self.api.get("Deployment", workload, self.namespace)
        self._wait_endpoints(dep, self._killed.pop(instance, set()))

    def _workload_of(self, instance: str) -> str:
        """The Deployment a pod name belongs to (``<deployment>-<hash>-<suffix>``)."""
        deps = self.api.list_objects(
            "Deployment", self.namespace, label_selector=owned_selector(self.run_id)
        )
        for dep in deps:
            if instance.startswith(dep["metadata"]["name"] + "-"):
                return str(dep["metadata"]["name"])
        raise UnknownWorkload(
            instance, [d["metadata"]["name"] for d in deps], what="instance's workload"
        )

    def scale(self, workload: str, replicas: int) -> None:
        """Set the Deployment's replicas, wait until its pods serve with sidecars, then
        until the client's sidecar lists exactly their addresses among its endpoints."""
        dep = self.api.find("Deployment", workload, self.namespace)
        if dep is None:
            self.instances(workload)  # raises UnknownWorkload naming the known ones
            return
        check_owned(dep, self.run_id)
        before = sync.pod_ips(apps.pods_of(self.api, self.namespace, dep))
        self.api.scale(workload, self.namespace, replicas)
        apps.wait_for_rollouts(
            self.api, self.namespace, [workload], deadline=self.wait_deadline, poll=self.poll
        )
        self._wait_endpoints(dep, before)

    def _wait_endpoints(self, dep: dict[str, Any], gone: set[str]) -> None:
        """Until the client's sidecar lists the Deployment's pod addresses, not ``gone``."""
        now = sync.pod_ips(apps.pods_of(self.api, self.namespace, dep))
        app = str(dep["spec"]["template"]["metadata"]["labels"].get("app"))
        port = expect.service_port(app)
        clients = self.instances("client")
        if port is None or not clients:
            return
        cluster = f"outbound|{port}||{app}.{self.namespace}.svc.cluster.local"
        sync.wait_for_endpoints(
            self.api, self.namespace, clients[0], cluster, present=now, absent=gone - now,
            deadline=self.wait_deadline, poll=self.poll,
        )  # fmt: skip

    # -- load --------------------------------------------------------------------------------------
    def run_load(
        self,
        plan: LoadPlan,
        *,
        source: str | None = None,
        triggers: Sequence[Any] = (),
        progress: bool = False,
    ) -> LoadResult:
        """From the host to the gateway (``source=None``), or in the mesh from ``source``."""
        url = plan.url
        if source is None:
            return inmesh.gateway_load(
                self._gateway_url, plan, url, self.gateway_host, triggers, progress=progress
            )
        pods = self.instances(source)
        if not pods:
            raise MeshError(f"no running pod of {source} in {self.namespace}")
        return inmesh.run_in_mesh(
            self.api, self.namespace, pods[0], plan, url, container=source, triggers=triggers
        )

    # -- teardown ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Owner: stop the lease, delete the run's namespace, then run :attr:`after_close`
        (the backend's own teardown, e.g. the kind cluster this run created), also when
        the deletion failed. Attached: nothing."""
        if self._closed:
            return
        self._closed = True
        if not self.owner:
            return
        atexit.unregister(self.close)
        if self._lease is not None:
            self._lease.stop()
        try:
            apps.delete_namespace(
                self.api, self.namespace, deadline=self.wait_deadline, poll=max(self.poll, 0.05)
            )
        finally:
            for action in self.after_close:
                action()
