"""A small client for one Envoy's admin API (readiness, listener ports, config versions, stats).

Plain ``http.client`` with a short timeout: the admin server is on loopback and answers in
about a millisecond, and this keeps ``meshchaos status`` free of aiohttp start-up cost.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from meshchaos.errors import MeshError

__all__ = ["AdminError", "ConfigVersions", "EnvoyAdmin"]


class AdminError(MeshError):
    """The admin endpoint did not answer (Envoy not up yet, or dead)."""


@dataclass(frozen=True)
class ConfigVersions:
    """The xDS versions one Envoy runs, read from ``/config_dump``."""

    # The last accepted CDS version. From sync_versions: every accepted update; from
    # config_versions (the dump): only updates that changed some cluster.
    cds: str
    routes: dict[str, str] = field(default_factory=dict)  # route config name -> version_info
    warming_clusters: int = 0
    rejected: int = 0  # sum of the *.update_rejected counters (only from sync_versions)

    @property
    def newest(self) -> str:
        """The newest config version this proxy runs, over clusters and route configs.

        An apply rewrites only the files whose content changed, so after a routes-only
        change the CDS version stays behind; the proxy still runs the newest config.
        """
        versions = [v for v in (self.cds, *self.routes.values()) if v.isdigit()]
        return max(versions, key=int) if versions else self.cds


class EnvoyAdmin:
    """The admin API of one Envoy at ``address`` ("127.0.0.1:PORT")."""

    def __init__(self, address: str, *, timeout: float = 2.0) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        self._host = host
        self._port = int(port)
        self._timeout = timeout

    def get(self, path: str, *, method: str = "GET") -> tuple[int, bytes]:
        """One request; raises :class:`AdminError` if Envoy does not answer."""
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise AdminError(f"Envoy admin {self.address}{path}: {exc}") from exc
        finally:
            conn.close()

    def get_json(self, path: str) -> Any:
        status, body = self.get(path)
        if status != 200:
            raise AdminError(f"Envoy admin {self.address}{path}: HTTP {status}")
        return json.loads(body)

    def is_live(self) -> bool:
        """``/ready`` answers 200 LIVE: the server finished initialising."""
        try:
            status, body = self.get("/ready")
        except AdminError:
            return False
        return status == 200 and body.strip() == b"LIVE"

    def listener_ports(self) -> dict[str, int]:
        """Listener name -> the port it bound (listeners are configured on port 0)."""
        data = self.get_json("/listeners?format=json")
        ports: dict[str, int] = {}
        for item in data.get("listener_statuses", []):
            sock = item.get("local_address", {}).get("socket_address", {})
            if sock.get("port_value"):
                ports[item["name"]] = int(sock["port_value"])
        return ports

    def config_versions(self) -> ConfigVersions:
        """The CDS version and every dynamic route config's version."""
        data = self.get_json("/config_dump")
        cds = ""
        routes: dict[str, str] = {}
        warming = 0
        for cfg in data.get("configs", []):
            kind = cfg.get("@type", "").rsplit(".", 1)[-1]
            if kind == "ClustersConfigDump":
                # The top-level version moves only with an update that changed a cluster;
                # an unchanged cluster keeps the version of the update that last changed it.
                cds = cfg.get("version_info", "")
                if not cds:
                    active = cfg.get("dynamic_active_clusters", [])
                    versions = [c.get("version_info", "") for c in active]
                    cds = max(versions, key=_version_key, default="")
                warming = len(cfg.get("dynamic_warming_clusters", []))
            elif kind == "RoutesConfigDump":
                for rc in cfg.get("dynamic_route_configs", []):
                    name = rc.get("route_config", {}).get("name", "")
                    routes[name] = rc.get("version_info", "")
        return ConfigVersions(cds=cds, routes=routes, warming_clusters=warming)

    def sync_versions(self) -> ConfigVersions:
        """The same versions from stats, ~10x cheaper than ``/config_dump`` (for polling).

        ``cluster_manager.cds.version_text`` is the value the config dump shows as the CDS
        version; ``http.<stat prefix>.rds.<route config>.version_text`` is each route
        config's version.
        """
        status, body = self.get("/stats?filter=(version_text|warming_clusters|update_rejected)$")
        if status != 200:
            raise AdminError(f"Envoy admin {self.address}/stats: HTTP {status}")
        cds, routes, warming, rejected = "", {}, 0, 0
        for line in body.decode(errors="replace").splitlines():
            name, _, value = line.partition(": ")
            value = value.strip().strip('"')
            if name.endswith(".update_rejected"):
                rejected += int(value or 0)
            elif name == "cluster_manager.cds.version_text":
                cds = value
            elif name == "cluster_manager.warming_clusters":
                warming = int(value or 0)
            elif name.startswith("http.") and ".rds." in name and name.endswith(".version_text"):
                route = name.split(".rds.", 1)[1].removesuffix(".version_text")
                routes[route] = value
        return ConfigVersions(cds, routes, warming_clusters=warming, rejected=rejected)

    def route_versions(self) -> dict[str, str]:
        """Route config name -> version, from ``/config_dump?resource=dynamic_route_configs``."""
        data = self.get_json("/config_dump?resource=dynamic_route_configs")
        return {
            rc.get("route_config", {}).get("name", ""): rc.get("version_info", "")
            for rc in data.get("configs", [])
        }

    def stats(self) -> dict[str, int]:
        """Every counter and gauge, from ``/stats?format=json`` (histograms left out)."""
        data = self.get_json("/stats?format=json")
        out: dict[str, int] = {}
        for item in data.get("stats", []):
            if "value" in item and isinstance(item["value"], int):
                out[item["name"]] = item["value"]
        return out

    def stats_text(self, filter: str | None = None) -> str:
        """The ``/stats`` text (``name: value`` lines), only the names matching the regex
        ``filter`` if given; parse it with :func:`meshchaos.mesh.envoy_stats.parse_stats`."""
        path = "/stats" if filter is None else "/stats?filter=" + urllib.parse.quote(filter)
        status, body = self.get(path)
        if status != 200:
            raise AdminError(f"Envoy admin {self.address}/stats: HTTP {status}")
        return body.decode(errors="replace")

    def rejections(self) -> dict[str, int]:
        """Non-zero ``*.update_rejected`` counters: xDS updates Envoy refused."""
        status, body = self.get("/stats?filter=update_rejected")
        if status != 200:
            return {}
        out: dict[str, int] = {}
        for line in body.decode(errors="replace").splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit() and int(value) > 0:
                out[name] = int(value)
        return out


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)
