"""In-mesh load on a cluster: the load agent, exec'd in the client pod, streams samples.

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

import importlib
import json
from typing import Any

from meshchaos.errors import LoadError
from meshchaos.load.plan import LoadPlan
from meshchaos.load.result import LoadResult
from meshchaos.mesh.kube.api import KubeApi

__all__ = ["EXEC_SLACK_S", "agent_plan", "run_in_mesh"]

EXEC_SLACK_S = 30.0  # beyond the plan's own time cap: exec start-up and the last replies


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
    agent = importlib.import_module("meshchaos.load.agent")
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
