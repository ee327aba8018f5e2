"""Istio networking API: parse and validate VirtualService, DestinationRule and Gateway.

``load_text``/``load_file``/``load_files`` turn YAML into the typed model of
:mod:`meshchaos.istio.model`, rejecting what istiod's validating webhook rejects. Input
is all or nothing: any problem raises :class:`ConfigInvalid` listing every problem.
"""

from __future__ import annotations

import copy
from typing import Any

from meshchaos.errors import ConfigInvalid
from meshchaos.istio.model import (
    Abort,
    ConnectionPoolSettings,
    ConsistentHash,
    Delay,
    Destination,
    DestinationRule,
    Gateway,
    HeaderOperations,
    Headers,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPMirrorPolicy,
    HTTPRedirect,
    HTTPRetry,
    HTTPRewrite,
    HTTPRoute,
    HTTPRouteDestination,
    HTTPSettings,
    LoadBalancerSettings,
    LoadBalancerSimple,
    MatchKind,
    Metadata,
    OutlierDetection,
    PortSelector,
    PortTrafficPolicy,
    Resource,
    Server,
    ServerPort,
    StringMatch,
    Subset,
    TCPSettings,
    TrafficPolicy,
    VirtualService,
    resource_id,
)
from meshchaos.istio.parse import (
    KINDS,
    load_file,
    load_files,
    load_text,
    parse_documents,
    parse_resource,
)

__all__ = [
    "KINDS",
    "Abort",
    "ConfigInvalid",
    "ConnectionPoolSettings",
    "ConsistentHash",
    "Delay",
    "Destination",
    "DestinationRule",
    "Gateway",
    "HTTPDirectResponse",
    "HTTPFaultInjection",
    "HTTPMatchRequest",
    "HTTPMirrorPolicy",
    "HTTPRedirect",
    "HTTPRetry",
    "HTTPRewrite",
    "HTTPRoute",
    "HTTPRouteDestination",
    "HTTPSettings",
    "HeaderOperations",
    "Headers",
    "LoadBalancerSettings",
    "LoadBalancerSimple",
    "MatchKind",
    "Metadata",
    "OutlierDetection",
    "PortSelector",
    "PortTrafficPolicy",
    "Resource",
    "Server",
    "ServerPort",
    "StringMatch",
    "Subset",
    "TCPSettings",
    "TrafficPolicy",
    "VirtualService",
    "dump",
    "load_file",
    "load_files",
    "load_text",
    "parse_documents",
    "parse_resource",
    "resource_id",
]


def dump(resource: Resource) -> dict[str, Any]:
    """The resource as it was written (its ``.raw`` document), for ``meshchaos get -o yaml``.

    A deep copy, so callers may edit it without touching the frozen resource.
    """
    return copy.deepcopy(resource.raw)
