"""Walk a request through the mesh hop by hop, as a finite mixture of answers.

Each hop happens in the CALLER's proxy (docs/ISTIO_SEMANTICS.md §0): pick the VirtualService
and route (§1), apply the fault (§5), split over destinations (§2), run the attempts
(§3, §4) against the callee versions, whose apps may call further (docs/BOOKINFO.md §1-§4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from meshchaos.istio.model import (
    Destination,
    HTTPRoute,
    HTTPRouteDestination,
    Resource,
    VirtualService,
)
from meshchaos.istio.route_policy import destination_port
from meshchaos.oracle import _balance
from meshchaos.oracle._apps import bookinfo_gateway_vs, compose, httpbin
from meshchaos.oracle._dist import Dist, Resp
from meshchaos.oracle._match import (
    Request,
    consistent_hash,
    find_subset,
    find_virtual_service,
    pick_route,
    service_name,
)
from meshchaos.oracle._router import (
    CONNECT_FAILURE,
    RetryPolicy,
    RouteFacts,
    apply_fault,
    attempts,
    route_facts,
)
from meshchaos.oracle.topology import CallEdge, Topology


@dataclass(frozen=True)
class Caller:
    """The proxy a hop runs in: a sidecar of ``<app>-<version>``, the client or a gateway."""

    name: str
    labels: Mapping[str, str]
    app: str | None = None
    version: str | None = None
    gateway: str | None = None  # the Gateway name when this proxy is an ingress gateway


@dataclass
class ClusterUse:
    """A cluster the request's first hop sends to, for the pool/outlier bounds."""

    service: str
    subset: str | None
    port: int
    hosts: list[tuple[str, int]]
    share: float


@dataclass
class Engine:
    resources: Sequence[Resource]
    topology: Topology
    user: str | None = None
    notes: list[str] = field(default_factory=list)
    first_hop: list[ClusterUse] = field(default_factory=list)
    # Requests in flight at once: above 1, LEAST_REQUEST favours fast hosts (_balance).
    concurrency: int = 1
    # Clusters whose LEAST_REQUEST pick spans hosts of unequal latency, with their hosts,
    # and the per-version pick weights to evaluate them with (one load order each).
    lb_uneven: dict[tuple[str, str | None], list[tuple[str, int]]] = field(default_factory=dict)
    lb_weights: dict[tuple[str, str | None], tuple[float, ...]] = field(default_factory=dict)
    _cache: dict[tuple[object, ...], Dist] = field(default_factory=dict)
    _depth: int = 0

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    # -- entry points -------------------------------------------------------------
    def from_gateway(self, req: Request, gateway: Caller) -> Dist:
        """A request entering at the ingress gateway (gateway-bound VirtualServices)."""
        host = req.headers.get("host", "*").split(":")[0]
        vss = [
            r
            for r in self.resources
            if isinstance(r, VirtualService) and any(g != "mesh" for g in r.gateways)
        ]
        if not vss:
            vss = [bookinfo_gateway_vs()]
            self.note("no gateway VirtualService given: using Bookinfo's (bookinfo-gateway.yaml)")
        vs = next((v for v in vss if "*" in v.hosts or host in v.hosts), None)
        if vs is None:
            self.note(f"gateway: no VirtualService for host {host} → 404 NR")
            return Dist.of(Resp(404, flag="NR"))
        bound = next(g.split("/")[-1] for g in vs.gateways if g != "mesh")
        return self._via_vs(replace(gateway, gateway=bound), vs, None, 8080, req)

    def hop(self, caller: Caller, service: str, port: int, req: Request) -> Dist:
        """What ``caller``'s app observes calling ``service:port`` with ``req``."""
        key = (caller.name, service, port, req.path, tuple(sorted(req.headers.items())), req.method)
        if key not in self._cache:
            vs = find_virtual_service(self.resources, service, None)
            if vs is None:
                self.note(
                    f"{caller.name} → {service}: no VirtualService: default route "
                    "(no timeout, default retries: 503 not retried)"
                )
                route = HTTPRoute(route=(HTTPRouteDestination(Destination(service)),))
                self._cache[key] = self._route(caller, route, port, req)
            else:
                self._cache[key] = self._via_vs(caller, vs, service, port, req)
        return self._cache[key]

    # -- one proxy ------------------------------------------------------------------
    def _via_vs(
        self, caller: Caller, vs: VirtualService, service: str | None, port: int, req: Request
    ) -> Dist:
        authority = f"{service or req.headers.get('host', '*')}:{port}"
        picked = pick_route(vs, req, port, authority, caller.labels, caller.gateway)
        target = service or "ingress"
        if picked is None:
            self.note(
                f"{caller.name} → {target}: VS {vs.metadata.name}: no route matches "
                f"{req.path} → 404 NR"
            )
            return Dist.of(Resp(404, flag="NR"))
        if service is None and picked.route.route:
            target = service_name(picked.route.route[0].destination.host)
        self.note(
            f"{caller.name} → {target}: VS {vs.metadata.name} route {picked.index} ({picked.why})"
        )
        return self._route(caller, picked.route, port, req)

    def facts(self, route: HTTPRoute, port: int) -> RouteFacts:
        """The route's timeout, retry policy, fault and mirror shares (shared semantics)."""
        hashed = False
        if len(route.route) == 1:
            dest = route.route[0].destination
            svc = service_name(dest.host)
            service = self.topology.services.get(svc)
            dport = destination_port(dest, (service.port,) if service else (), port)
            hashed = consistent_hash(self.resources, svc, dest.subset, dport)
        return route_facts(route, consistent_hash=hashed)

    def _route(self, caller: Caller, route: HTTPRoute, port: int, req: Request) -> Dist:
        if route.direct_response is not None:
            return Dist.of(Resp(route.direct_response.status))
        if route.redirect is not None:
            return Dist.of(Resp(route.redirect.redirect_code))
        facts = self.facts(route, port)
        policy = facts.retry
        if route.timeout is not None or route.retries is not None:
            t = "none" if facts.timeout is None else f"{facts.timeout:g} s"
            self.note(f"{caller.name}: route timeout {t}, {policy.describe()}")
        dests = facts.destinations
        total = sum(d.weight for d, _ in dests)
        inner = Dist()
        for d, share in dests:
            if len(dests) > 1:
                self.note(f"{caller.name}: weight {d.weight}/{total} → {_dest_key(d.destination)}")
            inner.absorb(
                self._cluster(caller, d.destination, req, policy, facts.timeout, share), share
            )
        mirrors = route.mirror_policies()
        for i, pct in facts.mirrors:
            # Mirrors are set by the router: an aborted request is never mirrored (§5, §6).
            inner.mirrored[_dest_key(mirrors[i].destination)] += pct
            self.note(f"{caller.name}: mirror {pct:.0%} → {_dest_key(mirrors[i].destination)}")
        fault = facts.fault
        if fault.delay_p:
            self.note(
                f"{caller.name}: fault delay {fault.delay:g} s @{fault.delay_p:.4g} (before "
                "the router, outside the route timeout)"
            )
        if fault.abort_p:
            self.note(
                f"{caller.name}: fault abort {fault.status} @{fault.abort_p:.4g} (never retried)"
                + (f"; {fault.note}" if fault.note else "")
            )
        return apply_fault(fault, inner)

    def _cluster(
        self,
        caller: Caller,
        dest: Destination,
        req: Request,
        policy: RetryPolicy,
        timeout: float | None,
        share: float,
    ) -> Dist:
        svc = service_name(dest.host)
        service = self.topology.services.get(svc)
        if service is None:
            self.note(f"{caller.name}: unknown service {dest.host} → 503 (not modelled)")
            return Dist.of(Resp(503, flag="UH"))
        versions = list(service.versions)
        if dest.subset is not None:
            subset = find_subset(self.resources, svc, dest.subset)
            if subset is None:
                self.note(
                    f"{caller.name} → {svc}: subset {dest.subset} not declared in any "
                    "DestinationRule → 503 NC"
                )
                return Dist.of(Resp(503, flag="NC"))
            versions = [
                v
                for v in versions
                if all({"app": svc, "version": v}.get(k) == val for k, val in subset.labels.items())
            ]
        hosts = [(v, self.topology.count(svc, v)) for v in versions]
        hosts = [(v, n) for v, n in hosts if n > 0]
        dead = [(v, self.topology.killed_count(svc, v)) for v in versions]
        dead = [(v, n) for v, n in dead if n > 0]
        # The topology gives each service one port, so the listener port never decides (§2).
        port = destination_port(dest, (service.port,), service.port)
        if self._depth == 0:
            self.first_hop.append(ClusterUse(svc, dest.subset, port, hosts, share))
        if not hosts and not dead:
            self.note(
                f"{caller.name} → {_dest_key(dest)}: no running instance → 503 no healthy upstream"
            )
            return Dist.of(Resp(503, flag="UH"))
        sub = f" subset {dest.subset}" if dest.subset else ""
        spread = ", ".join(f"{v} x{n}" for v, n in hosts)
        self.note(f"{caller.name} → {svc}{sub}: {spread}")
        answers = {v: self.serve(svc, v, req) for v, _ in hosts}
        # A killed instance is still an endpoint: connecting to it fails at once (503 UF),
        # which the retry policy may retry on another host (docs/ISTIO_SEMANTICS.md §4).
        for v, n in dead:
            self.note(
                f"{caller.name} → {svc}{sub}: {n} killed {v} instance(s) still registered: "
                "connection refused → 503 UF, retried only on connect-failure/reset/5xx/"
                "gateway-error"
            )
            answers[_killed(v)] = Dist.of(Resp(503, flag=CONNECT_FAILURE))
        live = [v for v, _ in hosts]
        hosts = hosts + [(_killed(v), n) for v, n in dead]
        upstreams = [(n, answers[v]) for v, n in hosts]
        key = (svc, dest.subset)
        if (
            self.concurrency > 1
            and sum(n for _, n in hosts) > 1
            and _balance.is_least_request(self.resources, svc, dest.subset, port)
            # A dead host fails in no time, so it always looks least busy.
            and (
                bool(dead)
                or _balance.is_uneven(list(answers.values()))
                or _balance.calls_differ(self.topology, svc, live, req.uri)
            )
        ):
            self.lb_uneven[key] = hosts
            self.note(
                f"{caller.name} → {svc}{sub}: LEAST_REQUEST over hosts of unequal latency or "
                f"work at concurrency {self.concurrency}: Envoy favours the faster hosts, so the "
                "shares are bounded over the balancer's load orders, not exact"
            )
        return attempts(upstreams, policy, timeout, self.lb_weights.get(key))

    # -- apps ----------------------------------------------------------------------
    def serve(self, svc: str, version: str, req: Request) -> Dist:
        """The answer of app ``svc`` version ``version`` (server side, no VS applies, §0)."""
        beh = self.topology.services[svc].versions[version]
        if beh.httpbin:
            return httpbin(req.uri)
        if not beh.paths:
            out = Dist()
            for r in beh.responses:
                label = beh.label if r.status == 200 else None
                out.add(Resp(r.status, label, r.seconds, 1 if r.seconds else 0), r.probability)
            return out
        path = next((e for e in beh.paths if req.uri.startswith(e.prefix)), None)
        if path is None:
            return Dist.of(Resp(200, beh.label))
        headers = {k: v for k, v in req.headers.items() if k in beh.propagate}
        if beh.sets_end_user and self.user:
            headers["end-user"] = self.user  # docs/BOOKINFO.md §1: from the session, not a header
        self._depth += 1
        try:
            calls = []
            for callee in path.calls:
                edge = self.topology.edge(svc, version, callee)
                if edge is not None:
                    calls.append((edge, self._app_call(svc, version, edge, headers)))
        finally:
            self._depth -= 1
        return compose(beh, path.page, calls)

    def _app_call(self, svc: str, version: str, edge: CallEdge, headers: dict[str, str]) -> Dist:
        """The app's own client call: ``attempts`` tries of ``timeout`` each; a second try
        follows a non-200 or a timeout (docs/BOOKINFO.md §1 table)."""
        caller = Caller(f"{svc}-{version}", {"app": svc, "version": version}, svc, version)
        port = self.topology.services[edge.callee].port
        mesh = self.hop(caller, edge.callee, port, Request(edge.path, headers))
        out = Dist()
        who = f"{svc}-{version} {edge.callee} call"

        def step(elapsed: float, timers: int, extra: float, n: int, prob: float) -> None:
            out.add_expectations(mesh, prob)
            for r, s in mesh.items():
                w = prob * s
                if r.t >= edge.timeout:
                    res = Resp(
                        500, edge.on_failure, elapsed + edge.timeout, timers + 1, extra, "timeout"
                    )
                else:
                    res = replace(
                        r, t=elapsed + r.t, timers=timers + r.timers, extra=extra + r.extra
                    )
                    if r.status != 200:
                        res = replace(res, label=edge.on_failure)
                if res.status != 200 and n + 1 < edge.attempts:
                    step(res.t, res.timers, res.extra, n + 1, w)
                    continue
                if res.status != 200:
                    why = "timeout" if res.flag == "timeout" else f"status {res.status}"
                    self.note(
                        f"{who}: {edge.timeout:g} s timeout x {edge.attempts}: "
                        f"{why} on every attempt → {edge.on_failure} at ≈{res.t:.1f} s"
                    )
                out.add(res, w)

        step(0.0, 0, 0.0, 0, 1.0)
        return out


def _killed(version: str) -> str:
    """The host entry of a version's killed instances (never a real version name)."""
    return f"{version} (killed)"


def _dest_key(dest: Destination) -> str:
    svc = service_name(dest.host)
    return f"{svc}/{dest.subset}" if dest.subset else svc
