"""The one module that talks to the Kubernetes API (the ``kubernetes`` client, v37).

:class:`KubeApi` is built from an explicit kubeconfig file and context, never from the
process-wide default config or the current context (``kind create`` switches it, and a
shared kubeconfig could point at a bystander cluster; KUBE_BACKEND.md T15). Every call
has a request timeout, returns plain dicts (the server's JSON, not the client's models)
and raises :class:`~meshchaos.mesh.kube.errors.KubeApiError` naming what was asked.

Writes are server-side apply with field manager ``meshchaos``, ``force`` and
``fieldValidation=Strict``: SSA prunes fields a previous apply set and we dropped, and
Strict turns a misspelled field (which a CRD's structural schema would otherwise prune
silently, the server's default being ``Warn``) into a 400 naming it (T6).
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshchaos.errors import MeshError
from meshchaos.mesh.kube.errors import NotFound, from_api_exception
from meshchaos.mesh.kube.kinds import KINDS, Kind, kind_of, object_ref

__all__ = ["FIELD_MANAGER", "ExecResult", "KubeApi"]

FIELD_MANAGER = "meshchaos"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# Names of the typed client's methods for the core and apps kinds.
_SNAKE = {
    "Namespace": "namespace",
    "ServiceAccount": "service_account",
    "Service": "service",
    "ConfigMap": "config_map",
    "Pod": "pod",
    "Deployment": "deployment",
}
_ERROR_CHANNEL = 3


@dataclass(frozen=True)
class ExecResult:
    """A finished exec: stdout (unless streamed to a callback), stderr and exit code."""

    stdout: bytes
    stderr: str
    returncode: int


class KubeApi:
    """A Kubernetes API client for one cluster, named by kubeconfig file and context."""

    def __init__(self, kubeconfig: Path, context: str, *, request_timeout: float = 30.0) -> None:
        from kubernetes import client, config

        if not context:
            raise MeshError(
                "a kube context must be named explicitly (the current one is never used)"
            )
        if not Path(kubeconfig).is_file():
            raise MeshError(f"kubeconfig {kubeconfig} does not exist")
        contexts, _ = config.list_kube_config_contexts(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        names = [c["name"] for c in contexts or ()]
        if context not in names:
            raise MeshError(
                f"kubeconfig {kubeconfig} has no context {context!r}; it has: "
                f"{', '.join(names) or 'none'}"
            )
        # persist_config=False: never write refreshed credentials back to the user's file.
        self._client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), context=context, persist_config=False
        )
        self.kubeconfig = Path(kubeconfig)
        self.context = context
        self.timeout = request_timeout
        self._core = client.CoreV1Api(self._client)
        self._apps = client.AppsV1Api(self._client)
        self._custom = client.CustomObjectsApi(self._client)

    @property
    def host(self) -> str:
        """The API server's URL, as the kubeconfig names it."""
        return str(self._client.configuration.host)

    def close(self) -> None:
        self._client.close()

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a client method with raw JSON out; the decoded body (or None when empty)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            resp = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            raise from_api_exception(exc, what) from None
        except (HTTPError, OSError) as exc:  # the server unreachable, or the connection lost
            raise from_api_exception(exc, what) from None
        data = resp.data
        return json.loads(data) if data else None

    def _typed(self, kind: Kind, verb: str) -> Callable[..., Any]:
        api = self._apps if kind.group == "apps" else self._core
        scope = "namespaced_" if kind.namespaced else ""
        return getattr(api, f"{verb}_{scope}{_SNAKE[kind.kind]}")  # type: ignore[no-any-return]

    # -- objects --------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply of one manifest; the object as the server stored it."""
        kind = kind_of(obj)
        meta = obj.get("metadata") or {}
        name, ns = str(meta.get("name")), meta.get("namespace")
        what = f"apply {kind.kind} {object_ref(obj)}"
        if kind.namespaced and not ns:
            raise MeshError(f"{what}: metadata.namespace is required")
        opts: dict[str, Any] = {
            "field_manager": FIELD_MANAGER,
            "force": True,
            "field_validation": "Strict",
            "_content_type": APPLY_PATCH,
        }
        if dry_run:
            opts["dry_run"] = "All"
        if kind.is_custom:
            fn = self._custom.patch_namespaced_custom_object
            out = self._call(what, fn, kind.group, kind.version, ns, kind.plural, name, obj, **opts)
        elif kind.namespaced:
            out = self._call(what, self._typed(kind, "patch"), name, ns, obj, **opts)
        else:
            out = self._call(what, self._typed(kind, "patch"), name, obj, **opts)
        return dict(out or {})

    def get(self, kind_name: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """One object; :class:`NotFound` if it does not exist."""
        kind = KINDS[kind_name]
        what = f"get {kind.kind} {f'{namespace}/' if namespace else ''}{name}"
        if kind.is_custom:
            fn = self._custom.get_namespaced_custom_object
            out = self._call(what, fn, kind.group, kind.version, namespace, kind.plural, name)
        elif kind.namespaced:
            out = self._call(what, self._typed(kind, "read"), name, namespace)
        else:
            out = self._call(what, self._typed(kind, "read"), name)
        return dict(out or {})

    def find(
        self, kind_name: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """One object, or ``None`` if it does not exist."""
        try:
            return self.get(kind_name, name, namespace)
        except NotFound:
            return None

    def list_objects(
        self, kind_name: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """The objects of a kind (in ``namespace`` for a namespaced kind)."""
        kind = KINDS[kind_name]
        what = f"list {kind.plural}{f' in {namespace}' if namespace else ''}"
        sel = {"label_selector": label_selector} if label_selector else {}
        if kind.is_custom:
            fn = self._custom.list_namespaced_custom_object
            out = self._call(what, fn, kind.group, kind.version, namespace, kind.plural, **sel)
        elif kind.namespaced:
            out = self._call(what, self._typed(kind, "list"), namespace, **sel)
        else:
            out = self._call(what, self._typed(kind, "list"), **sel)
        return [dict(item) for item in (out or {}).get("items") or ()]

    def delete(
        self,
        kind_name: str,
        name: str,
        namespace: str | None = None,
        *,
        grace_seconds: int | None = None,
    ) -> bool:
        """Delete one object; False if it was already gone. Callers check ownership first
        (:func:`meshchaos.mesh.kube.safety.check_owned`)."""
        kind = KINDS[kind_name]
        what = f"delete {kind.kind} {f'{namespace}/' if namespace else ''}{name}"
        opts: dict[str, Any] = {}
        if grace_seconds is not None:
            opts["grace_period_seconds"] = grace_seconds
        try:
            if kind.is_custom:
                fn = self._custom.delete_namespaced_custom_object
                self._call(what, fn, kind.group, kind.version, namespace, kind.plural, name, **opts)
            elif kind.namespaced:
                self._call(what, self._typed(kind, "delete"), name, namespace, **opts)
            else:
                self._call(what, self._typed(kind, "delete"), name, **opts)
        except NotFound:
            return False
        return True

    def merge_patch(
        self, kind_name: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch (for our own annotations, e.g. renewing a lease)."""
        kind = KINDS[kind_name]
        what = f"patch {kind.kind} {f'{namespace}/' if namespace else ''}{name}"
        fn = self._typed(kind, "patch")
        args = (name, namespace, patch) if kind.namespaced else (name, patch)
        return dict(self._call(what, fn, *args, _content_type=MERGE_PATCH) or {})

    def scale(self, deployment: str, namespace: str, replicas: int) -> None:
        """Set a Deployment's replicas through its ``scale`` subresource."""
        what = f"scale Deployment {namespace}/{deployment} to {replicas}"
        body = {"spec": {"replicas": replicas}}
        fn = self._apps.patch_namespaced_deployment_scale
        self._call(what, fn, deployment, namespace, body, _content_type=MERGE_PATCH)

    def events(self, namespace: str, involved: str | None = None) -> list[dict[str, Any]]:
        """Events in ``namespace`` (about the object named ``involved``), oldest first."""
        what = f"list events in {namespace}"
        sel = {"field_selector": f"involvedObject.name={involved}"} if involved else {}
        out = self._call(what, self._core.list_namespaced_event, namespace, **sel)
        items = [dict(i) for i in (out or {}).get("items") or ()]
        return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    # -- exec -------------------------------------------------------------------------------
    def exec(
        self,
        pod: str,
        namespace: str,
        container: str,
        command: Sequence[str],
        *,
        deadline: float,
        stdin: bytes | None = None,
        on_stdout: Callable[[bytes], None] | None = None,
        more_stdin: queue.SimpleQueue[bytes] | None = None,
    ) -> ExecResult:
        """Run ``command`` (argv, no shell) in a container over the exec websocket.

        stdout and stderr are kept apart and the exit code comes from the error channel
        (the client's preloading mode would merge them and drop it, T10). ``stdin`` is
        written, then closed where the server speaks ``v5.channel.k8s.io``. ``on_stdout``
        receives stdout as it arrives (then :attr:`ExecResult.stdout` is empty).
        ``more_stdin``: a conversation: stdin stays open after ``stdin`` and whatever is
        put on this queue (from any thread) is written as it comes, until the command ends.
        ``deadline``: seconds; past it the stream is closed and :class:`MeshError` raised.
        """
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream

        what = f"exec {list(command)!r} in {namespace}/{pod} ({container})"
        try:
            ws = stream(
                self._core.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                container=container,
                command=list(command),
                stdin=stdin is not None,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
                binary=True,
            )
        except ApiException as exc:
            raise from_api_exception(exc, what) from None
        out, err, status = bytearray(), bytearray(), bytearray()
        end = time.monotonic() + deadline
        try:
            if stdin is not None:
                ws.write_stdin(stdin)
                if more_stdin is None:
                    ws.close_channel(0)
            while ws.is_open():
                while more_stdin is not None and not more_stdin.empty():
                    ws.write_stdin(more_stdin.get_nowait())
                left = end - time.monotonic()
                if left <= 0:
                    raise MeshError(f"{what}: not finished within {deadline:g} s")
                # Short updates while a conversation may have more to say.
                ws.update(timeout=min(left, 1.0 if more_stdin is None else 0.05))
                chunk = ws.read_stdout(timeout=0)
                if chunk:
                    if on_stdout is not None:
                        on_stdout(bytes(chunk))
                    else:
                        out += chunk
                err += ws.read_stderr(timeout=0) or b""
                status += ws.read_channel(_ERROR_CHANNEL, timeout=0) or b""
            # Frames that arrived with the close.
            for ch, buf in ((1, out), (2, err), (_ERROR_CHANNEL, status)):
                rest = ws._channels.pop(ch, b"")
                if ch == 1 and rest and on_stdout is not None:
                    on_stdout(bytes(rest))
                elif rest:
                    buf += rest
        finally:
            ws.close(timeout=1)  # after a deadline, do not wait long for the close handshake
            # After the server's close frame the client answers it and marks itself closed,
            # so its close() leaves the socket open: shut it here.
            ws.sock.shutdown()
        code = _exit_code(bytes(status), what, err.decode(errors="replace"))
        return ExecResult(bytes(out), err.decode(errors="replace"), code)


def _exit_code(status: bytes, what: str, stderr: str) -> int:
    """The exit code in an exec's error-channel Status (``v4``/``v5`` protocols)."""
    if not status.strip():
        raise MeshError(f"{what}: the stream closed without an exit status")
    try:
        st = json.loads(status)
    except ValueError:
        raise MeshError(f"{what}: unreadable exit status {status[:200]!r}") from None
    if st.get("status") == "Success":
        return 0
    if st.get("reason") == "NonZeroExitCode":
        for cause in (st.get("details") or {}).get("causes") or ():
            if cause.get("reason") == "ExitCode":
                return int(cause.get("message"))
    tail = f"; stderr: {stderr.strip()[-500:]}" if stderr.strip() else ""
    raise MeshError(f"{what}: {st.get('message') or st}{tail}")
