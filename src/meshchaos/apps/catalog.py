"""The workloads of the local mesh, derived from the apps' facts (``meshchaos.apps.facts``).

Mirrors the Kubernetes objects of ``manifests/bookinfo`` and ``manifests/httpbin``:
each workload is a Deployment (``name``) behind a Service (``service``:``port``),
labelled ``app``/``version`` so DestinationRule subsets select it. ``env`` is the
container environment the app reads, exactly as the real images read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshchaos.apps import facts

NAMESPACE = "default"
DOMAIN = "svc.cluster.local"


@dataclass(frozen=True)
class WorkloadSpec:
    name: str  # Deployment name, e.g. "reviews-v2"
    service: str  # Kubernetes Service it belongs to, e.g. "reviews"; "" for no Service
    port: int  # Service port (and container port) the app serves on
    app: str  # which implementation in meshchaos.apps runs: productpage, details, ...
    labels: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1  # instances started with the mesh; 0 = available for scale()

    @property
    def fqdn(self) -> str:
        return f"{self.service}.{NAMESPACE}.{DOMAIN}"


def _workloads(app: facts.App) -> tuple[WorkloadSpec, ...]:
    return tuple(
        WorkloadSpec(
            name=f"{app.name}-{v.name}",
            service=app.name,
            port=app.port,
            app=app.name,
            labels={"app": app.name, "version": v.name},
            env=dict(v.env),
            replicas=v.replicas,
        )
        for v in app.versions
        if v.deployed
    )


# The in-mesh client: a sidecar with no Service of its own.
_CLIENT = WorkloadSpec(facts.CLIENT.name, "", 0, facts.CLIENT.name, dict(facts.CLIENT.labels))

# Every deployed version of Bookinfo and httpbin, then the client.
DEFAULT_WORKLOADS: tuple[WorkloadSpec, ...] = (
    *(w for app in facts.APPS for w in _workloads(app)),
    _CLIENT,
)


def services(workloads: tuple[WorkloadSpec, ...] = DEFAULT_WORKLOADS) -> dict[str, int]:
    """Service name -> port, for every Service the workloads declare."""
    return {w.service: w.port for w in workloads if w.service}


def find(name: str, workloads: tuple[WorkloadSpec, ...] = DEFAULT_WORKLOADS) -> WorkloadSpec:
    for w in workloads:
        if w.name == name:
            return w
    known = ", ".join(w.name for w in workloads)
    raise KeyError(f"unknown workload {name!r}; known: {known}")
