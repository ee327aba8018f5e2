"""What meshchaos may touch on a cluster, and how a crashed run's leftovers are found.

Everything meshchaos creates carries ``app.kubernetes.io/managed-by: meshchaos`` (the
Kubernetes recommended label) and ``meshchaos.io/run-id: <run>``. Before any delete or
patch, :func:`check_owned` refuses an object without them: meshchaos never touches what
it did not create. A run's namespace also carries a lease, the annotation
``meshchaos.io/lease-expires`` (RFC 3339, UTC), that a :class:`LeaseKeeper` thread renews
while the run lives. A namespace whose lease has expired belongs to a run that died
without cleaning up: :func:`sweep_leftovers` deletes those, and only those.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from meshchaos.errors import MeshError
from meshchaos.mesh.kube.api import KubeApi
from meshchaos.mesh.kube.kinds import object_ref

__all__ = [
    "LEASE_ANNOTATION",
    "MANAGED_BY",
    "MANAGER",
    "NAMESPACE_PREFIX",
    "RUN_ID",
    "LeaseKeeper",
    "NotOwned",
    "check_owned",
    "lease_expiry",
    "lease_value",
    "owned_labels",
    "owned_selector",
    "sweep_leftovers",
]

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "meshchaos"
RUN_ID = "meshchaos.io/run-id"
LEASE_ANNOTATION = "meshchaos.io/lease-expires"
NAMESPACE_PREFIX = "meshchaos-"
DEFAULT_LEASE_S = 600.0


class NotOwned(MeshError):
    """An object meshchaos was about to change or delete that it did not create."""


def owned_labels(run_id: str) -> dict[str, str]:
    """The labels every object of run ``run_id`` carries."""
    return {MANAGED_BY: MANAGER, RUN_ID: run_id}


def owned_selector(run_id: str | None = None) -> str:
    """A label selector for meshchaos's objects (of one run, when given)."""
    sel = f"{MANAGED_BY}={MANAGER}"
    return f"{sel},{RUN_ID}={run_id}" if run_id else sel


def check_owned(obj: dict[str, Any], run_id: str | None = None) -> None:
    """Raise :class:`NotOwned` unless ``obj`` carries our labels (and ``run_id``'s)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    what = f"{obj.get('kind') or 'object'} {object_ref(obj)}"
    if labels.get(MANAGED_BY) != MANAGER:
        raise NotOwned(
            f"refusing to touch {what}: it lacks the label {MANAGED_BY}={MANAGER}, so "
            "meshchaos did not create it"
        )
    if run_id is not None and labels.get(RUN_ID) != run_id:
        raise NotOwned(
            f"refusing to touch {what}: it belongs to run {labels.get(RUN_ID)!r}, not {run_id!r}"
        )


def lease_value(expires: datetime) -> str:
    return expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lease_expiry(obj: dict[str, Any]) -> datetime | None:
    """When ``obj``'s lease expires; ``None`` when it has none or it is unreadable."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(LEASE_ANNOTATION)
    if not text:
        return None
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


class LeaseKeeper:
    """Renews a namespace's lease every ``ttl / 3`` seconds until :meth:`stop`.

    A thread, so the lease lives as long as the process does and no longer: a run that
    crashes or is killed stops renewing, and after ``ttl`` seconds the next run sweeps
    its namespace. A failed renewal is kept in :attr:`error` and retried next period.
    """

    def __init__(
        self, api: KubeApi, namespace: str, *, ttl: float = DEFAULT_LEASE_S, clock: Any = None
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.ttl = ttl
        self.error: str | None = None
        self.renewals = 0
        self._now = clock or (lambda: datetime.now(UTC))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"meshchaos-lease-{namespace}", daemon=True
        )

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def renew(self) -> None:
        """Push the lease ``ttl`` seconds from now (checking the namespace is ours)."""
        ns = self.api.get("Namespace", self.namespace)
        check_owned(ns)
        expires = self._now() + timedelta(seconds=self.ttl)
        patch = {"metadata": {"annotations": {LEASE_ANNOTATION: lease_value(expires)}}}
        self.api.merge_patch("Namespace", self.namespace, None, patch)
        self.renewals += 1

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
                self.error = None
            except MeshError as exc:
                self.error = str(exc)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop renewing; waits at most ``timeout`` seconds for a renewal in flight."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def sweep_leftovers(api: KubeApi, *, now: datetime | None = None) -> list[str]:
    """Delete meshchaos namespaces whose lease has expired; their names.

    Only namespaces listed by our label, named ``meshchaos-*``, with a readable lease in
    the past, and not already being deleted. A labelled namespace with no lease is
    someone else's idea and is left alone; an unlabelled one is never even listed.
    """
    now = now or datetime.now(UTC)
    swept: list[str] = []
    for ns in api.list_objects("Namespace", label_selector=owned_selector()):
        meta = ns.get("metadata") or {}
        name = str(meta.get("name"))
        expires = lease_expiry(ns)
        if not name.startswith(NAMESPACE_PREFIX) or meta.get("deletionTimestamp"):
            continue
        if expires is None or expires > now:
            continue
        check_owned({**ns, "kind": "Namespace"})
        if api.delete("Namespace", name):
            swept.append(name)
    return sorted(swept)
