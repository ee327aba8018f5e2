"""The workloads of the local mesh, as data.

Mirrors the Kubernetes objects of ``manifests/bookinfo`` and ``manifests/httpbin``:
each workload is a Deployment (``name``) behind a Service (``service``:``port``),
labelled ``app``/``version`` so DestinationRule subsets select it. ``env`` is the
container environment the app reads, exactly as the real images read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def _bookinfo(name: str, app: str, version: str, **env: str) -> WorkloadSpec:
    return WorkloadSpec(
        name=f"{app}-{version}",
        service=app,
        port=9080,
        app=name,
        labels={"app": app, "version": version},
        env=dict(env),
    )


BOOKINFO: tuple[WorkloadSpec, ...] = (
    _bookinfo("productpage", "productpage", "v1"),
    _bookinfo("details", "details", "v1"),
    _bookinfo("reviews", "reviews", "v1", ENABLE_RATINGS="false"),
    _bookinfo("reviews", "reviews", "v2", ENABLE_RATINGS="true", STAR_COLOR="black"),
    _bookinfo("reviews", "reviews", "v3", ENABLE_RATINGS="true", STAR_COLOR="red"),
    _bookinfo("ratings", "ratings", "v1", SERVICE_VERSION="v1"),
    # Istio's sample variants: not running until a scenario scales them up, so that
    # default routing to ratings is never confounded by them.
    WorkloadSpec(
        name="ratings-v-faulty",
        service="ratings",
        port=9080,
        app="ratings",
        labels={"app": "ratings", "version": "v-faulty"},
        env={"SERVICE_VERSION": "v-faulty"},
        replicas=0,
    ),
    WorkloadSpec(
        name="ratings-v-delayed",
        service="ratings",
        port=9080,
        app="ratings",
        labels={"app": "ratings", "version": "v-delayed"},
        env={"SERVICE_VERSION": "v-delayed"},
        replicas=0,
    ),
)

HTTPBIN: tuple[WorkloadSpec, ...] = (
    WorkloadSpec("httpbin-v1", "httpbin", 8000, "httpbin", {"app": "httpbin", "version": "v1"}),
    WorkloadSpec("httpbin-v2", "httpbin", 8000, "httpbin", {"app": "httpbin", "version": "v2"}),
    # Answers 503 to everything: the bad instance for outlier-detection scenarios.
    WorkloadSpec(
        "httpbin-v-faulty",
        "httpbin",
        8000,
        "httpbin",
        {"app": "httpbin", "version": "v-faulty"},
        env={"HTTPBIN_FAIL_ALL": "503"},
        replicas=0,
    ),
)

# The in-mesh client (Istio's fortio/curl pod): a sidecar with no Service of its own.
CLIENT = WorkloadSpec("client", "", 0, "client", {"app": "client", "version": "v1"})

DEFAULT_WORKLOADS: tuple[WorkloadSpec, ...] = (*BOOKINFO, *HTTPBIN, CLIENT)


def services(workloads: tuple[WorkloadSpec, ...] = DEFAULT_WORKLOADS) -> dict[str, int]:
    """Service name -> port, for every Service the workloads declare."""
    return {w.service: w.port for w in workloads if w.service}


def find(name: str, workloads: tuple[WorkloadSpec, ...] = DEFAULT_WORKLOADS) -> WorkloadSpec:
    for w in workloads:
        if w.name == name:
            return w
    known = ", ".join(w.name for w in workloads)
    raise KeyError(f"unknown workload {name!r}; known: {known}")
