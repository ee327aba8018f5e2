"""Envoy's ``/stats`` text, parsed, and a :class:`CounterQuery` answered from it.

Every backend reads the same text: the local mesh from each Envoy's admin ``/stats``, a
Kubernetes sidecar through ``pilot-agent request GET stats``. The stat names differ
between the two only where Istio and the local translator name listeners differently,
and :func:`counter_total` accepts both:

- cluster stats: ``cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_retry``
  (client side), ``cluster.inbound|9080||.upstream_rq_total`` (server side);
- HTTP connection manager stats, where the fault filter counts:
  ``http.<stat prefix>.fault.aborts_injected``, the prefix ``outbound``/``gateway`` locally
  and ``outbound_0.0.0.0_9080`` in Istio on the client side, ``inbound`` /
  ``inbound_0.0.0.0_9080`` on the server side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from meshchaos.errors import MeshError
from meshchaos.mesh.base import CounterQuery, Side

__all__ = ["counter_total", "parse_stats", "stats_filter"]

# A counter or gauge: "name: 123". Names hold no spaces; Envoy joins scopes with dots.
_VALUE = re.compile(r"^(\S+): (-?\d+)$")
# Skipped: histograms ("P0(nan,1) P25(...)" or "No recorded values") and text readouts
# ('cluster_manager.cds.version_text: "2"').
_SKIPPED = re.compile(r"^\S+: (No recorded values|P\d+\(.*|\".*\")$")
_FAULT_PREFIX = "fault."


def parse_stats(text: str) -> dict[str, int]:
    """Counters and gauges of one ``/stats`` text dump (``name: value`` lines).

    Histograms and text readouts are left out; any other line that does not read as
    ``name: integer`` is a :class:`MeshError` naming the line, since a truncated or foreign
    answer must not pass for a proxy that counted nothing.
    """
    out: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.rstrip()
        if not line:
            continue
        m = _VALUE.match(line)
        if m is not None:
            out[m.group(1)] = int(m.group(2))
        elif _SKIPPED.match(line) is None:
            shown = line if len(line) <= 120 else line[:117] + "..."
            raise MeshError(f"Envoy stats, line {number}: not 'name: value': {shown!r}")
    return out


def stats_filter(names: tuple[str, ...]) -> str:
    """A regex for ``/stats?filter=`` that keeps only the stats ``names`` can match."""
    return "(" + "|".join(re.escape("." + n) for n in names) + ")$"


def counter_total(stats: Mapping[str, int], query: CounterQuery) -> int | None:
    """The sum of the stats of one proxy (or of several, summed) that ``query`` names, by
    side and port; ``None`` when no stat matches (the proxy does not emit it)."""
    total: int | None = None
    suffix = "." + query.name
    for key, value in stats.items():
        if key.endswith(suffix) and _matches(key[: -len(suffix)], query):
            total = value if total is None else total + value
    return total


def _matches(scope: str, query: CounterQuery) -> bool:
    """``scope`` is the stat name without ``.<query.name>``."""
    if query.name.startswith(_FAULT_PREFIX):
        prefix = scope.removeprefix("http.")
        if prefix == scope:
            return False
        if "." in prefix and _ISTIO_HCM_PREFIX.fullmatch(prefix) is None:
            return False  # a per-downstream-cluster fault stat: http.X.fault.CLUSTER.name
        inbound = prefix.startswith("inbound")
        if query.side is Side.CLIENT:
            return not inbound
        return inbound and (
            query.port is None or prefix == "inbound" or prefix.endswith(f"_{query.port}")
        )
    if not scope.startswith("cluster."):
        return False
    direction, _, rest = scope.removeprefix("cluster.").partition("|")
    wanted = "outbound" if query.side is Side.CLIENT else "inbound"
    return direction == wanted and (query.port is None or rest.partition("|")[0] == str(query.port))


# Istio's HCM stat prefixes hold the listener address (``outbound_0.0.0.0_9080``).
_ISTIO_HCM_PREFIX = re.compile(r"(inbound|outbound)_[0-9a-fA-F.:\[\]]+_\d+")
