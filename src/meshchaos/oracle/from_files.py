"""Predictions from policy files: what ``meshchaos predict -f ...`` asks the oracle.

:func:`predict_from_files` starts from the baseline every mesh starts with (Bookinfo's
gateway and the version subsets, :data:`meshchaos.manifests.BASELINE`), applies the
given policies on top as ``kubectl apply`` would, and predicts one request class, so a
prediction and a freshly started mesh agree on where they begin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from meshchaos.errors import MeshChaosError, UnknownWorkload
from meshchaos.oracle import BOOKINFO, Topology
from meshchaos.oracle.predict import predict
from meshchaos.oracle.prediction import Prediction, RequestClass

__all__ = ["predict_from_files", "request_class"]


def request_class(
    target: str = "/productpage",
    *,
    user: str | None = None,
    headers: Mapping[str, str] | None = None,
    source: str = "gateway",
    concurrency: int = 1,
) -> RequestClass:
    """The request class for ``target``: a path (for productpage, the gateway's route),
    or a URL such as ``http://httpbin:8000/get``, which names the service's host and
    port for an in-mesh client (``source="client"``). Header names are lower-cased."""
    path, host, port = target, RequestClass.host, RequestClass.port
    if "://" in target:
        url = urlsplit(target)
        try:
            port = url.port or 80
        except ValueError:
            raise MeshChaosError(f"{target!r}: the port is not a number") from None
        host = url.hostname or host
        path = url.path or "/"
        if url.query:
            path = f"{path}?{url.query}"
    return RequestClass(
        path=path,
        user=user,
        headers={k.strip().lower(): v.strip() for k, v in (headers or {}).items()},
        source=source,
        host=host,
        port=port,
        concurrency=max(1, concurrency),
    )


def predict_from_files(
    policies: Sequence[str | Path],
    request: RequestClass,
    *,
    policy_dirs: Sequence[Path] = (),
    baseline: bool = True,
    topology: Topology = BOOKINFO,
) -> Prediction:
    """The oracle's prediction for ``request`` under the baseline plus ``policies``.

    ``policies`` are paths or names (looked up in ``policy_dirs``, then the packaged
    samples: :func:`meshchaos.manifests.find_policy`). Raises
    :class:`~meshchaos.errors.UnknownWorkload` when ``request.source`` is not a source
    of ``topology``, and :class:`~meshchaos.errors.ConfigInvalid` with every problem of
    every file (not found, unreadable, invalid) before predicting anything.
    """
    from meshchaos.istio.parse import load_files
    from meshchaos.manifests import baseline_paths, load_policies, merge

    if request.source not in topology.sources:
        raise UnknownWorkload(
            request.source, list(topology.sources), "source workload", "in the app topology"
        )
    base = load_files(baseline_paths()) if baseline else []
    given = load_policies(policies, policy_dirs) if policies else []
    return predict(merge(base, given), request, topology)
