"""What to load and how: :class:`LoadTarget`, :class:`LoadPlan`, and their checks.

The generator only ever talks to loopback. A target URL must name a loopback host
(127.0.0.0/8, ``localhost``, ``::1``), unless a mesh proxy (an in-mesh client's
sidecar, itself on loopback) is given: then the URL may name an in-mesh service
(``httpbin``, ``reviews.default.svc.cluster.local``), because the sidecar decides
where it goes.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from meshchaos.errors import LoadError

__all__ = [
    "ABSOLUTE_MAX_DURATION",
    "ABSOLUTE_MAX_REQUESTS",
    "DEFAULT_DURATION",
    "MAX_CONCURRENCY",
    "TRIGGER_TIMEOUT",
    "LoadPlan",
    "LoadTarget",
    "Trigger",
    "check_target",
    "is_loopback_host",
    "parse_duration",
]

# Ceilings no plan can raise: a typo in max_requests must not run for a day.
ABSOLUTE_MAX_REQUESTS = 5_000_000
ABSOLUTE_MAX_DURATION = 3600.0
MAX_CONCURRENCY = 1024
# Neither -n nor -t: run for 5 s, as fortio does.
DEFAULT_DURATION = 5.0

# Longest a trigger's action (a kill, a scale) may take before the run reports it stuck.
TRIGGER_TIMEOUT = 30.0

_MESH_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class LoadTarget:
    """Where requests go: ``url`` directly, or through the mesh sidecar at ``proxy``."""

    url: str  # "http://127.0.0.1:41234/productpage", or with proxy "http://httpbin:8000/get"
    proxy: str | None = None  # in-mesh client sidecar, e.g. "http://127.0.0.1:41500"


@dataclass(frozen=True)
class Trigger:
    """An action the run starts once ``after`` requests have completed.

    The action runs in a helper thread while the load goes on, so the requests in
    flight at that moment and the ones sent after it are both observed: chaos such as
    an instance kill is set off by the load's own progress, never by a wall-clock guess
    that a fast run may already have outlived. The run records when it started and
    ended (:class:`meshchaos.load.result.Event`).
    """

    after: int
    action: Callable[[], object]
    name: str
    # Requests the run goes on for once the action has ended and settled, beyond its
    # planned count if need be: the phase after the chaos gets its sample whatever the
    # action took. ``settle`` seconds after the action still count as around it.
    then: int = 0
    settle: float = 0.0


@dataclass(frozen=True)
class LoadPlan:
    """How much load: closed loop (``qps`` unset) or open loop at ``qps``.

    ``requests`` and ``duration`` both bound the run (whichever comes first); with
    neither, the run lasts :data:`DEFAULT_DURATION`. ``max_requests`` and
    ``max_duration`` are hard caps that apply even when more is asked for.
    """

    concurrency: int = 8
    requests: int | None = None
    duration: float | None = None
    qps: float | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    user: str | None = None  # Bookinfo login first (POST /login), keeping the session cookie
    timeout: float = 30.0  # per-request client timeout, seconds
    method: str = "GET"
    max_requests: int = 200_000
    max_duration: float = 600.0
    triggers: tuple[Trigger, ...] = ()
    # Where, for Mesh.run_load: a path joins the gateway's base URL; with an in-mesh
    # source, the URL as an app writes it ("http://httpbin:8000/get"). The engine itself
    # takes its LoadTarget and ignores this.
    url: str = "/"

    @property
    def is_open_loop(self) -> bool:
        return self.qps is not None and self.qps > 0

    def request_cap(self) -> int:
        """How many requests at most this plan may send (before any trigger extends it)."""
        cap = self.hard_request_cap()
        return cap if self.requests is None else min(cap, self.requests)

    def hard_request_cap(self) -> int:
        """The most requests any extension of this plan may send (its hard caps)."""
        cap = min(self.max_requests, ABSOLUTE_MAX_REQUESTS)
        if self.is_open_loop and self.duration is not None:
            assert self.qps is not None
            cap = min(cap, math.ceil(self.duration * self.qps))
        return cap

    def time_cap(self) -> float:
        """How long at most this plan may keep sending, seconds."""
        cap = min(self.max_duration, ABSOLUTE_MAX_DURATION)
        if self.duration is not None:
            return min(cap, self.duration)
        if self.requests is None:
            return min(cap, DEFAULT_DURATION)
        return cap

    def check(self) -> None:
        """Raise :class:`LoadError` listing every problem of this plan."""
        problems: list[str] = []
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            problems.append(f"concurrency must be in 1..{MAX_CONCURRENCY}, got {self.concurrency}")
        if self.requests is not None and self.requests < 1:
            problems.append(f"requests must be >= 1, got {self.requests}")
        if self.duration is not None and not (self.duration > 0 and math.isfinite(self.duration)):
            problems.append(f"duration must be a positive number of seconds, got {self.duration}")
        if self.qps is not None and not (self.qps >= 0 and math.isfinite(self.qps)):
            problems.append(f"qps must be >= 0 (0 = closed loop), got {self.qps}")
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            problems.append(f"timeout must be a positive number of seconds, got {self.timeout}")
        if self.max_requests < 1 or self.max_duration <= 0:
            problems.append("max_requests and max_duration must be positive")
        if not re.fullmatch(r"[A-Z]+", self.method):
            problems.append(f"method must be an upper-case HTTP method, got {self.method!r}")
        for trigger in self.triggers:
            if not 1 <= trigger.after < self.request_cap():
                problems.append(
                    f"trigger {trigger.name!r} after {trigger.after} requests: must be in "
                    f"1..{self.request_cap() - 1}, so that load goes on past it"
                )
        for name, value in self.headers.items():
            if not name or any(c in name for c in ":\r\n ") or "\n" in value or "\r" in value:
                problems.append(f"invalid header {name!r}: {value!r}")
        if problems:
            raise LoadError("invalid load plan: " + "; ".join(problems))


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_mesh_name(host: str) -> bool:
    # An in-mesh service name as Istio resolves it: a bare Service name, or its
    # namespaced / cluster-local forms. Dotted public names and IPs are not.
    host = host.lower()
    for suffix in _MESH_SUFFIXES:
        if host.endswith(suffix):
            host = host[: -len(suffix)]
            return all(_LABEL.match(p) for p in host.split(".")) and 1 <= host.count(".") + 1 <= 2
    return bool(_LABEL.match(host)) and not host.isdigit()


def _split(url: str, what: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadError(f"{what} must be an absolute http:// URL, got {url!r}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise LoadError(f"{what} has an invalid port: {url!r}") from exc
    return parts.scheme, parts.hostname


def _base(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def check_target(target: LoadTarget, allowed: Sequence[str] = ()) -> None:
    """Refuse any target or proxy that would leave this machine (:class:`LoadError`),
    but for a URL on one of the ``allowed`` base URLs (the gateway address a mesh backend
    reported, :meth:`meshchaos.mesh.base.Mesh.load_targets`)."""
    _, host = _split(target.url, "target URL")
    if target.proxy is None:
        if is_loopback_host(host) or _base(target.url) in {_base(a) for a in allowed}:
            return
        extra = f" nor one of the mesh's load targets ({', '.join(allowed)})" if allowed else ""
        raise LoadError(
            f"refusing target {target.url!r}: host {host!r} is not loopback "
            f"(127.0.0.0/8, localhost, ::1){extra}; meshchaos only loads the mesh under test"
        )
    scheme, proxy_host = _split(target.proxy, "proxy URL")
    if scheme != "http" or not is_loopback_host(proxy_host):
        raise LoadError(
            f"refusing proxy {target.proxy!r}: the mesh proxy must be an http:// URL on loopback"
        )
    if not (is_loopback_host(host) or _is_mesh_name(host)):
        raise LoadError(
            f"refusing target {target.url!r} through the mesh proxy: {host!r} is neither "
            "loopback nor an in-mesh service name (e.g. httpbin, reviews.default.svc.cluster.local)"
        )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``"10s"``, ``"1m"``, ``"1.5s"``, ``"250ms"``, ``"1h"`` or a bare ``"30"``."""
    m = _DURATION.match(text)
    if m is None:
        raise LoadError(
            f"invalid duration {text!r}: expected a number with an optional unit, "
            "like 250ms, 10s, 1.5m or 1h"
        )
    seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if seconds <= 0:
        raise LoadError(f"invalid duration {text!r}: must be greater than zero")
    return seconds
