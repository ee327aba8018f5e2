"""Kubernetes API errors as :class:`MeshError` messages a user can act on.

    MeshError
    └── KubeApiError           the API server refused a request (keeps its Status payload)
        └── NotFound           404: the object does not exist

The message names what was asked (verb, kind, ``namespace/name``), the server's reason
and every cause with its field, e.g.
``apply VirtualService ns/reviews: BadRequest (400): .spec.http[0].retrys: field not
declared in schema``. The server's Status object stays on :attr:`KubeApiError.status`.
"""

from __future__ import annotations

import json
from typing import Any

from meshchaos.errors import MeshError

__all__ = ["KubeApiError", "NotFound", "from_api_exception"]


class KubeApiError(MeshError):
    """The API server answered a request with an error Status."""

    def __init__(
        self,
        what: str,
        code: int,
        reason: str,
        message: str,
        causes: list[tuple[str, str]],
        status: dict[str, Any],
    ) -> None:
        self.what = what
        self.code = code
        self.reason = reason
        self.causes = causes  # (field, message) pairs; field "" when the server gave none
        self.status = status
        lines = [f"{what}: {reason} ({code}): {message}".rstrip(": ")]
        lines += [f"  {field}: {msg}" if field else f"  {msg}" for field, msg in causes]
        super().__init__("\n".join(lines))


class NotFound(KubeApiError):
    """404 Not Found."""


def _status_of(body: str | bytes | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return {"message": (body.decode() if isinstance(body, bytes) else body)[:500]}
    return data if isinstance(data, dict) else {}


def from_api_exception(exc: Exception, what: str) -> KubeApiError:
    """Translate a ``kubernetes.client.ApiException`` (or a transport failure, status 0)."""
    code = int(getattr(exc, "status", 0) or 0)
    status = _status_of(getattr(exc, "body", None))
    reason = str(status.get("reason") or getattr(exc, "reason", None) or "Error")
    message = str(status.get("message") or "")
    if code == 0 and not message:
        message = f"the API server could not be reached: {getattr(exc, 'reason', exc)}"
    details = status.get("details") or {}
    causes: list[tuple[str, str]] = []
    for cause in details.get("causes") or ():
        field = str(cause.get("field") or "")
        msg = str(cause.get("message") or cause.get("reason") or "")
        if (msg and msg not in message) or field:
            causes.append((field, msg))
    cls = NotFound if code == 404 else KubeApiError
    return cls(what, code, reason, message, causes, status)
