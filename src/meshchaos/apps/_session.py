"""productpage's signed session cookie, standing in for Flask's ``session``.

The cookie ``session`` holds ``{"user": name}`` as base64url JSON plus an
HMAC-SHA256 signature. The key is random per process: every productpage instance
of one app host accepts the others' cookies, as Flask replicas sharing a secret do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets

COOKIE = "session"
_KEY = secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str, key: bytes) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def encode(user: str, key: bytes = _KEY) -> str:
    """The cookie value for a session holding ``user``."""
    payload = _b64(json.dumps({"user": user}, separators=(",", ":")).encode())
    return f"{payload}.{_sign(payload, key)}"


def decode(value: str | None, key: bytes = _KEY) -> str | None:
    """The user in a cookie value, or None if absent, malformed or not signed by ``key``."""
    if not value or "." not in value:
        return None
    payload, _, signature = value.partition(".")
    try:
        if not hmac.compare_digest(_sign(payload, key), signature):
            return None
        user = json.loads(_unb64(payload)).get("user")
    except (ValueError, TypeError, UnicodeError, binascii.Error, AttributeError):
        return None
    return user if isinstance(user, str) and user else None
