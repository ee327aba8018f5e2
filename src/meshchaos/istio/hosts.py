"""Which service a host in an Istio resource names (docs/ISTIO_SEMANTICS.md §1, §2, §7).

Shared by the local translator and the oracle, like :mod:`meshchaos.istio.cluster_policy` and
:mod:`meshchaos.istio.route_policy`.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshchaos.istio.model import DestinationRule

__all__ = ["DEFAULT_DOMAIN", "destination_rule_for", "host_matches", "resolve_host"]

# Kubernetes' default cluster domain: services are <name>.<namespace>.svc.cluster.local.
DEFAULT_DOMAIN = "cluster.local"


def resolve_host(host: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    """A host as written in a resource -> the name istiod looks up (§1, §2).

    Only a dotless short name is expanded, in the namespace of the resource that names it
    (istiod's ``ResolveShortnameToFQDN``): ``reviews`` -> ``reviews.default.svc.cluster.local``,
    while ``reviews.default`` stays as is and so names no Kubernetes service. ``*`` and
    wildcard names stay as they are. Hosts are compared in lower case (§1).
    """
    h = host.lower()
    if h == "*" or "." in h or ":" in h:  # wildcard, FQDN or IPv6 literal
        return h
    return f"{h}.{namespace}.svc.{domain}"


def host_matches(pattern: str, fqdn: str) -> bool:
    """Whether the resolved host ``pattern`` selects service ``fqdn``: equal, ``*``, or a
    ``*.suffix`` wildcard that covers it (istiod's ``host.Name.Matches``)."""
    p, f = pattern.lower(), fqdn.lower()
    if "*" not in p:
        return p == f
    return p == "*" or (p.startswith("*") and f.endswith(p[1:]) and len(f) > len(p) - 1)


def destination_rule_for(
    rules: Iterable[DestinationRule], fqdn: str, domain: str = DEFAULT_DOMAIN
) -> DestinationRule | None:
    """The DestinationRule that applies to service ``fqdn``.

    An exact host wins over a wildcard, a longer wildcard over a shorter one (the most
    specific host, as istiod picks it); among equals the first given wins (istiod keeps the
    oldest, §1 "which one is later" is UNCONFIRMED, so callers warn about the rest).
    """
    best: tuple[int, DestinationRule] | None = None
    for dr in rules:
        host = resolve_host(dr.host, dr.metadata.namespace, domain)
        if not host_matches(host, fqdn):
            continue
        rank = 10**6 if "*" not in host else len(host)
        if best is None or rank > best[0]:
            best = (rank, dr)
    return best[1] if best is not None else None
