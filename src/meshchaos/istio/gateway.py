"""Gateway: servers, ports and hosts (``validation.go ValidateGateway/validateServer``)."""

from __future__ import annotations

from typing import Any

from meshchaos.istio._fields import Reader
from meshchaos.istio.model import Gateway, Metadata, Server, ServerPort
from meshchaos.istio.names import check_port, check_wildcard_domain, is_dns1123_label

# pkg/config/protocol: names protocol.Parse knows (case-insensitive).
PROTOCOLS = frozenset(
    {
        "HTTP",
        "HTTPS",
        "HTTP2",
        "HTTP_PROXY",
        "GRPC",
        "GRPC-WEB",
        "TCP",
        "TLS",
        "UDP",
        "MONGO",
        "REDIS",
        "MYSQL",
    }
)
_TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})


def parse_gateway(
    spec: dict[str, Any], metadata: Metadata, r: Reader, source: str, raw: dict[str, Any]
) -> Gateway | None:
    """Build a Gateway from its ``spec``; ``None`` when any problem was reported."""
    before = r.problems.count
    if not is_dns1123_label(metadata.name):
        r.add("metadata.name", f'invalid gateway name: "{metadata.name}"')
    selector = r.str_map(spec.get("selector"), "spec.selector")
    items = r.seq(spec.get("servers"), "spec.servers")
    if not items:
        r.add("spec.servers", "gateway must have at least one server")
    servers = []
    port_names: set[str] = set()
    for i, item in enumerate(items):
        server = _parse_server(item, f"spec.servers[{i}]", r)
        if server is None:
            continue
        if server.port.name in port_names:
            r.add(
                f"spec.servers[{i}].port.name",
                f"port names in servers must be unique: duplicate name {server.port.name}",
            )
        port_names.add(server.port.name)
        servers.append(server)
    if r.problems.count != before:
        return None
    return Gateway(
        metadata=metadata,
        selector=selector,
        servers=tuple(servers),
        source=source,
        raw=raw,
    )


def _parse_server(value: Any, path: str, r: Reader) -> Server | None:
    raw = r.mapping(value, path)
    if raw is None:
        if value is None:
            r.add(path, "cannot have nil server")
        return None
    hosts = r.str_list(raw.get("hosts"), f"{path}.hosts")
    if not hosts:
        r.add(f"{path}.hosts", "server config must contain at least one host")
    for i, host in enumerate(hosts):
        _check_server_host(host, f"{path}.hosts[{i}]", r)
    port = _parse_server_port(raw.get("port"), f"{path}.port", r)
    if port is not None:
        is_tls = port.protocol.upper() in _TLS_PROTOCOLS
        if is_tls and raw.get("tls") is None:
            r.add(path, "server must have TLS settings for HTTPS/TLS protocols")
    name = r.string(raw.get("name"), f"{path}.name")
    if port is None:
        return None
    return Server(port=port, hosts=hosts, name=name)


def _check_server_host(host: str, path: str, r: Reader) -> None:
    """``ValidateNamespaceSlashWildcardHostname``: ``[namespace/]host``, wildcards allowed."""
    namespace, slash, name = host.partition("/")
    if not slash:
        namespace, name = "", host
    elif namespace not in ("*", ".", "~") and not is_dns1123_label(namespace):
        r.add(path, f'invalid namespace "{namespace}" in host "{host}"')
    problem = check_wildcard_domain(name)
    if problem is not None:
        r.add(path, problem)


def _parse_server_port(value: Any, path: str, r: Reader) -> ServerPort | None:
    raw = r.mapping(value, path)
    if raw is None:
        if value is None:
            r.add(path, "port is required")
        return None
    number = r.integer(raw.get("number"), f"{path}.number")
    if raw.get("number") is None:
        r.add(f"{path}.number", "required")
    elif number is not None:
        problem = check_port(number)
        if problem is not None:
            r.add(f"{path}.number", problem)
    protocol = r.string(raw.get("protocol"), f"{path}.protocol") or ""
    if protocol.upper() not in PROTOCOLS:
        r.add(
            f"{path}.protocol",
            f'invalid protocol "{protocol}", supported protocols are '
            "HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP, TLS",
        )
    name = r.string(raw.get("name"), f"{path}.name") or ""
    if not name:
        r.add(f"{path}.name", "port name must be set")
    if number is None or not 1 <= number <= 65535:
        return None
    return ServerPort(number=number, protocol=protocol, name=name)
