"""Load on a cluster: from the host to the gateway, or in the mesh from the client pod.

Gateway load runs the local load engine against the gateway address the backend reported,
and nowhere else, with the run's gateway host header when runs share the gateway.

In-mesh load: the load agent, exec'd in the client pod, streams samples.

The agent (``meshchaos.load.agent``, stdlib only) is mounted into the client pod from a
ConfigMap; exec starts it with one JSON plan on stdin, and it writes NDJSON samples to
stdout as requests complete. Its requests leave through the client pod's sidecar, so
routing, faults, retries and circuit breakers act there as in the local mesh's client
sidecar, and both backends record the same samples.

The agent's module is looked up when a load runs (it is built alongside this backend);
this module assumes its contract: ``agent_command()``, ``StreamReader`` with
``feed(bytes) -> list`` of samples and ``close() -> dict`` (the ``end`` record, a
:class:`LoadError` when the stream is truncated), and
``samples_to_result(samples, end, plan=..., target=...)``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from meshchaos.errors import LoadError, MeshError
from meshchaos.load.plan import LoadPlan, LoadTarget
from meshchaos.load.result import LoadResult
from meshchaos.mesh.kube.api import KubeApi

__all__ = ["EXEC_SLACK_S", "agent_plan", "gateway_load", "run_in_mesh"]

EXEC_SLACK_S = 30.0  # beyond the plan's own time cap: exec start-up and the last replies


def gateway_load(
    gateway_url: str,
    plan: LoadPlan,
    url: str,
    gateway_host: str | None = None,
    triggers: Sequence[Any] = (),
) -> LoadResult:
    """``plan`` from the host to ``url`` (a path, or an absolute URL on the gateway)."""
    from meshchaos.load.classify import classifier_for_url
    from meshchaos.load.engine import run_load

    target = url if "://" in url else gateway_url + url
    if target != gateway_url and not target.startswith(gateway_url + "/"):
        raise MeshError(f"refusing load to {target}: not the gateway {gateway_url}")
    headers = {**plan.headers, **({"Host": gateway_host} if gateway_host else {})}
    run = dataclasses.replace(plan, headers=headers, triggers=tuple(triggers) or plan.triggers)
    return run_load(LoadTarget(target), run, classifier_for_url(target), allowed=(gateway_url,))


def agent_plan(plan: LoadPlan, url: str) -> dict[str, Any]:
    """The JSON plan the agent reads on stdin."""
    if plan.user is not None:
        raise LoadError("a Bookinfo login (user=) is not supported for in-mesh load")
    return {
        "url": url,
        "n": plan.requests,
        "concurrency": plan.concurrency,
        "qps": plan.qps,
        "duration_s": plan.duration,
        "headers": dict(plan.headers),
        "timeout_s": plan.timeout,
        "proxy": None,  # the pod's sidecar intercepts the agent's outbound traffic
        "deadline_s": plan.time_cap() + plan.timeout,
    }


def run_in_mesh(
    api: KubeApi, namespace: str, pod: str, plan: LoadPlan, url: str, *, container: str = "client"
) -> LoadResult:
    """Run ``plan`` against in-mesh ``url`` from ``pod``; the agent's samples as a result."""
    from meshchaos.load import agent

    request = agent_plan(plan, url)
    reader = agent.StreamReader()
    samples: list[Any] = []
    res = api.exec(
        pod,
        namespace,
        container,
        list(agent.agent_command()),
        stdin=(json.dumps(request) + "\n").encode(),
        deadline=request["deadline_s"] + EXEC_SLACK_S,
        on_stdout=lambda chunk: samples.extend(reader.feed(chunk)),
    )
    if res.returncode != 0:
        raise LoadError(
            f"load agent in {namespace}/{pod} exited with {res.returncode}: "
            f"{res.stderr.strip()[-500:] or 'no stderr'}"
        )
    end = reader.close()
    result: LoadResult = agent.samples_to_result(samples, end, plan=plan, target=url)
    return result
