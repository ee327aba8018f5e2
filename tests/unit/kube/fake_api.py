"""A fake Kubernetes API server on 127.0.0.1, at the HTTP boundary.

Just the REST paths meshchaos's :class:`~meshchaos.mesh.kube.api.KubeApi` uses: server-side
apply (``PATCH`` with ``application/apply-patch+yaml``, checking field manager, force and
``fieldValidation=Strict``), merge patches, GET/LIST (label selectors)/DELETE, the
Deployment scale subresource, events, and pod exec over a websocket with canned output.
The real ``kubernetes`` client talks to it through a kubeconfig that points here, so the
product's code runs unchanged. Every request is logged as ``METHOD path`` for sequence
assertions.

A tiny Deployment controller makes ``replicas`` pods per applied Deployment (Ready, with an
``istio-proxy`` container and the injector's annotation) unless a test marks the Deployment
as failing (``pod_faults``), which leaves its pods waiting with that reason and an event.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fake_api_ws as ws
import yaml

Obj = dict[str, Any]
# (pod, container, command, stdin) -> (stdout chunks, stderr, exit code)
ExecHandler = Callable[[str, str, list[str], bytes], tuple[list[bytes], bytes, int]]

_CORE = {"namespaces", "pods", "services", "configmaps", "serviceaccounts", "events"}


@dataclass
class FakeKube:
    """The fake cluster's state, and the knobs tests turn."""

    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)  # (plural, ns, name)
    log: list[str] = field(default_factory=list)
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    unknown_fields: set[str] = field(default_factory=set)  # Strict rejects these keys
    pod_faults: dict[str, tuple[str, str]] = field(default_factory=dict)  # deploy -> reason, msg
    no_sidecar: set[str] = field(default_factory=set)  # deployments the injector missed
    exec_handler: ExecHandler | None = None
    # An exec that is a conversation: (pod, container, command) -> the argv of a real local
    # process that stands in for the command (stdin frames piped in as they come, its
    # stdout sent back as it writes), or None for exec_handler's canned answer.
    exec_process: Callable[[str, str, list[str]], list[str] | None] | None = None
    protocols: tuple[str, ...] = (ws.V5, ws.V4)
    auto_pods: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- helpers for tests ---------------------------------------------------------------
    def put(self, plural: str, obj: Obj) -> None:
        meta = obj["metadata"]
        self.objects[(plural, meta.get("namespace", ""), meta["name"])] = obj

    def names(self, plural: str, ns: str = "") -> list[str]:
        return sorted(n for (p, s, n) in self.objects if p == plural and s == ns)

    def writes(self) -> list[str]:
        return [e for e in self.log if not e.startswith(("GET", "EXEC"))]

    # -- the controller ------------------------------------------------------------------
    def _reconcile(self, dep: Obj) -> None:
        meta, spec = dep["metadata"], dep.get("spec", {})
        ns, name = meta["namespace"], meta["name"]
        want = int(spec.get("replicas", 1))
        mine = sorted(
            n for (p, s, n) in self.objects if p == "pods" and s == ns and n.startswith(f"{name}-")
        )
        for extra in mine[want:]:
            del self.objects[("pods", ns, extra)]
        fault = self.pod_faults.get(name)
        for _ in range(want - len(mine[:want])):
            pod_name = f"{name}-{next(self._ids):05d}"
            pod = _pod(ns, pod_name, spec.get("template", {}), fault, name not in self.no_sidecar)
            pod["status"]["podIP"] = f"10.244.0.{pod_name.rsplit('-', 1)[1].lstrip('0')}"
            self.put("pods", pod)
            if fault:
                self.put("events", _event(ns, pod_name, fault))
        ready = 0 if fault else want
        dep["status"] = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": want,
            "updatedReplicas": want,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }

    # -- the server ----------------------------------------------------------------------
    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        fake = self

        class Handler(_Handler):
            kube = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"


def _pod(
    ns: str, name: str, template: Obj, fault: tuple[str, str] | None, sidecar: bool = True
) -> Obj:
    tmeta, tspec = template.get("metadata", {}), template.get("spec", {})
    app_containers = [c["name"] for c in tspec.get("containers", [])]
    statuses = []
    for cname in [*app_containers, *(["istio-proxy"] if sidecar else [])]:
        if fault and cname != "istio-proxy":
            state = {"waiting": {"reason": fault[0], "message": fault[1]}}
        else:
            state = {"running": {"startedAt": "2026-12-02T16:00:00Z"}}
        statuses.append({"name": cname, "ready": not fault, "state": state, "restartCount": 0})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": dict(tmeta.get("labels", {})),
            "annotations": {**tmeta.get("annotations", {}), "sidecar.istio.io/status": "{}"},
        },
        "spec": _with_sidecar(copy.deepcopy(tspec), sidecar),
        "status": {
            "phase": "Pending" if fault else "Running",
            "conditions": [{"type": "Ready", "status": "False" if fault else "True"}],
            "containerStatuses": statuses,
        },
    }


def _with_sidecar(spec: Obj, sidecar: bool) -> Obj:
    if sidecar:  # a native sidecar, as the injector makes on Kubernetes >= 1.33 (T14)
        spec.setdefault("initContainers", []).append(
            {"name": "istio-proxy", "restartPolicy": "Always"}
        )
    return spec


def _event(ns: str, pod: str, fault: tuple[str, str]) -> Obj:
    return {
        "metadata": {"name": f"{pod}.1", "namespace": ns},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns},
        "type": "Warning",
        "reason": "Failed",
        "message": f"Error: {fault[0]}: {fault[1]}",
        "lastTimestamp": "2026-12-02T16:00:01Z",
    }


def _status(code: int, reason: str, message: str, causes: list[Obj] | None = None) -> Obj:
    out: Obj = {"kind": "Status", "apiVersion": "v1", "status": "Failure"}
    out.update(message=message, reason=reason, code=code)
    if causes:
        out["details"] = {"causes": causes}
    return out


def _unknown(obj: Any, bad: set[str], path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            here = f"{path}.{k}"
            if k in bad:
                found.append(here)
            found += _unknown(v, bad, here)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += _unknown(v, bad, f"{path}[{i}]")
    return found


def _selected(obj: Obj, selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        k, _, v = term.partition("=")
        if (v and labels.get(k) != v) or (not v and k not in labels):
            return False
    return True


_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)


class _Handler(BaseHTTPRequestHandler):
    kube: FakeKube
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between head and body

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: Obj) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, str, str, str, str, dict[str, list[str]]]:
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        m = _PATH.match(url.path)
        if not m:
            raise LookupError(url.path)
        plural, ns, name, sub = m["plural"], m["ns"] or "", m["name"] or "", m["sub"] or ""
        return plural, ns, name, sub, url.path, q

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self, method: str) -> None:
        k = self.kube
        try:
            plural, ns, name, sub, path, q = self._route()
        except LookupError:
            self._reply(404, _status(404, "NotFound", f"no route {self.path}"))
            return
        if sub == "exec":
            self._exec(ns, name, q)
            return
        with k.lock:
            query = urllib.parse.urlsplit(self.path).query
            k.log.append(f"{method} {path}{'?' + query if method == 'PATCH' else ''}")
            k.queries.append(q)
            body = self._body()
            key = (plural, ns, name)
            if method == "GET" and name:
                obj = k.objects.get(key)
                if obj is None:
                    self._reply(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
                elif sub == "scale":
                    self._reply(200, {"spec": {"replicas": obj["spec"].get("replicas", 1)}})
                else:
                    self._reply(200, obj)
            elif method == "GET":
                sel = (q.get("labelSelector") or [""])[0]
                fsel = (q.get("fieldSelector") or [""])[0]
                items = [
                    o
                    for (p, s, _), o in sorted(k.objects.items())
                    if p == plural and (s == ns or not ns)
                ]
                items = [o for o in items if _selected(o, sel)]
                if fsel.startswith("involvedObject.name="):
                    want = fsel.split("=", 1)[1]
                    items = [o for o in items if o.get("involvedObject", {}).get("name") == want]
                self._reply(200, {"kind": "List", "items": items})
            elif method == "DELETE":
                if key not in k.objects:
                    self._reply(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
                    return
                del k.objects[key]
                if plural == "pods" and k.auto_pods:  # the ReplicaSet replaces it
                    for (p2, s2, n2), dep in list(k.objects.items()):
                        if p2 == "deployments" and s2 == ns and name.startswith(n2 + "-"):
                            k._reconcile(dep)
                if plural == "namespaces":
                    for other in [x for x in k.objects if x[1] == name]:
                        del k.objects[other]
                self._reply(200, {"kind": "Status", "status": "Success"})
            elif method == "PATCH":
                self._patch(key, sub, body, q)
            else:
                self._reply(405, _status(405, "MethodNotAllowed", method))

    def _patch(
        self, key: tuple[str, str, str], sub: str, body: bytes, q: dict[str, list[str]]
    ) -> None:
        k = self.kube
        ctype = self.headers.get("Content-Type", "")
        if ctype == "application/apply-patch+yaml":
            if q.get("fieldManager") != ["meshchaos"] or q.get("force") != ["true"]:
                self._reply(400, _status(400, "BadRequest", "apply needs fieldManager and force"))
                return
            obj = yaml.safe_load(body)
            if q.get("fieldValidation") == ["Strict"]:
                bad = _unknown(obj, k.unknown_fields)
                if bad:
                    msg = ", ".join(f'unknown field "{b[1:]}"' for b in bad)
                    causes = [
                        {
                            "reason": "FieldValueInvalid",
                            "message": "field not declared in schema",
                            "field": b[1:],
                        }
                        for b in bad
                    ]
                    self._reply(
                        400, _status(400, "BadRequest", f"strict decoding error: {msg}", causes)
                    )
                    return
            if q.get("dryRun") == ["All"]:  # admission only, nothing persisted
                self._reply(200, obj)
                return
            old = k.objects.get(key)
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(next(k._ids))
            meta["generation"] = (old or {}).get("metadata", {}).get("generation", 0) + 1
            meta.setdefault("uid", f"uid-{meta['resourceVersion']}")
            k.objects[key] = obj
            if key[0] == "deployments" and k.auto_pods:
                k._reconcile(obj)
            self._reply(200, obj)
            return
        if ctype != "application/merge-patch+json":
            self._reply(415, _status(415, "UnsupportedMediaType", ctype))
            return
        obj = k.objects.get(key)
        if obj is None:
            self._reply(404, _status(404, "NotFound", f'{key[0]} "{key[2]}" not found'))
            return
        _merge(obj, json.loads(body))
        if key[0] == "deployments" and k.auto_pods:
            k._reconcile(obj)
        self._reply(200, {"spec": obj.get("spec", {})} if sub == "scale" else obj)

    def _exec(self, ns: str, pod: str, q: dict[str, list[str]]) -> None:
        k = self.kube
        command, container = q.get("command", []), (q.get("container") or [""])[0]
        with k.lock:
            k.log.append(f"EXEC {ns}/{pod}/{container} {' '.join(command)}")
            k.queries.append(q)
            exists = ("pods", ns, pod) in k.objects
        proto = ws.pick_protocol(self.headers.get("Sec-WebSocket-Protocol", ""), k.protocols)
        if self.headers.get("Upgrade", "").lower() != "websocket" or proto is None:
            self._reply(400, _status(400, "BadRequest", "exec needs a websocket upgrade"))
            return
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", ws.accept_key(self.headers["Sec-WebSocket-Key"]))
        self.send_header("Sec-WebSocket-Protocol", proto)
        self.end_headers()
        self.wfile.flush()
        argv = k.exec_process(pod, container, command) if k.exec_process and exists else None
        if argv is not None:
            code = ws.converse(self.rfile, self.wfile, argv)
            ws.send_frame(self.wfile, b"\x03" + ws.exit_status(code))
            ws.close(self.wfile, self.connection)
            self.close_connection = True
            return
        stdin = ws.read_stdin(self.rfile, proto) if q.get("stdin") == ["true"] else b""
        if not exists:
            chunks, err, code = [], b"", -1
        elif k.exec_handler is None:
            chunks, err, code = [], b"no exec handler\n", 1
        else:
            chunks, err, code = k.exec_handler(pod, container, command, stdin)
        for chunk in chunks:
            ws.send_frame(self.wfile, b"\x01" + chunk)
        if err:
            ws.send_frame(self.wfile, b"\x02" + err)
        if code < 0:
            status = json.dumps(_status(404, "NotFound", f'pods "{pod}" not found')).encode()
        else:
            status = ws.exit_status(code)
        ws.send_frame(self.wfile, b"\x03" + status)
        ws.close(self.wfile, self.connection)
        self.close_connection = True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


def _merge(dst: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if value is None:
            dst.pop(key, None)
        elif isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = value


def write_kubeconfig(path: Path, server: str, context: str = "kind-meshchaos") -> Path:
    """A kubeconfig with one context, ``context``, pointing at ``server``."""
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
        "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake"}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


class Cluster:
    """A running fake API server, its kubeconfig, and the state behind it."""

    def __init__(self, tmp: Path, context: str = "kind-meshchaos") -> None:
        self.kube = FakeKube()
        self.server, self.url = self.kube.serve()
        self.kubeconfig = write_kubeconfig(tmp / "kubeconfig", self.url, context)
        self.context = context

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
