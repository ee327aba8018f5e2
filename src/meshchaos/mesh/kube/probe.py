"""A converging probe through the ingress gateway: N answers of 200 in a row.

The config_dump barrier proves the sidecars hold the new content; the probe proves the
gateway path serves (a VirtualService bound to the gateway is checked only this way), as
Istio's tests retry calls until they converge. Only to the gateway address the backend
reported, with the run's gateway host header when several runs share the gateway.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from meshchaos.errors import MeshError

__all__ = ["PROBE_PATH", "converge"]

PROBE_PATH = "/productpage"


def converge(
    gateway_url: str,
    *,
    host: str | None = None,
    path: str = PROBE_PATH,
    times: int = 3,
    deadline: float = 30.0,
    poll: float = 0.1,
    timeout: float = 5.0,
) -> float:
    """GET ``gateway_url + path`` until ``times`` answers in a row are 200; the seconds
    it took. :class:`MeshError` with the last answer after ``deadline`` seconds."""
    t0 = time.monotonic()
    url = gateway_url.rstrip("/") + path
    headers = {"Host": host} if host else {}
    streak, last = 0, "no answer yet"
    while True:
        left = deadline - (time.monotonic() - t0)
        try:
            req = urllib.request.Request(url, headers=headers)  # noqa: S310 (http only)
            with urllib.request.urlopen(req, timeout=min(timeout, max(left, 0.1))) as resp:  # noqa: S310
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            status, last = 0, f"no answer ({exc})"
        if status == 200:
            streak += 1
            if streak >= times:
                return time.monotonic() - t0
        else:
            streak = 0
            last = f"status {status}" if status else last
        if time.monotonic() - t0 >= deadline:
            raise MeshError(
                f"probe {url} did not answer 200 {times} times in a row within {deadline:g} s; "
                f"last: {last}"
            )
        time.sleep(poll)  # a bounded retry, as Istio's converging calls
