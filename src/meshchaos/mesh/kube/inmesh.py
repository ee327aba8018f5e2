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
import queue
from collections.abc import Sequence
from typing import Any

from meshchaos.errors import LoadError, MeshError
from meshchaos.load.plan import LoadPlan, LoadTarget
from meshchaos.load.result import LoadResult
from meshchaos.mesh.kube.api import KubeApi

__all__ = ["EXEC_SLACK_S", "gateway_load", "run_in_mesh"]

EXEC_SLACK_S = 30.0  # beyond the plan's own time cap: exec start-up and the last replies


def gateway_load(
    gateway_url: str,
    plan: LoadPlan,
    url: str,
    gateway_host: str | None = None,
    triggers: Sequence[Any] = (),
    *,
    progress: bool = False,
) -> LoadResult:
    """``plan`` from the host to ``url`` (a path, or an absolute URL on the gateway)."""
    from meshchaos.load.classify import classifier_for_url
    from meshchaos.load.engine import run_load

    target = url if "://" in url else gateway_url + url
    if target != gateway_url and not target.startswith(gateway_url + "/"):
        raise MeshError(f"refusing load to {target}: not the gateway {gateway_url}")
    headers = {**plan.headers, **({"Host": gateway_host} if gateway_host else {})}
    run = dataclasses.replace(plan, headers=headers, triggers=tuple(triggers) or plan.triggers)
    return run_load(
        LoadTarget(target),
        run,
        classifier_for_url(target),
        allowed=(gateway_url,),
        progress=progress,
    )


def run_in_mesh(
    api: KubeApi,
    namespace: str,
    pod: str,
    plan: LoadPlan,
    url: str,
    *,
    container: str = "client",
    triggers: Sequence[Any] = (),
) -> LoadResult:
    """Run ``plan`` against in-mesh ``url`` from ``pod``: the load agent over exec (the
    plan line, then, with triggers, their ``done`` lines as their actions end), its
    stdout read into the same samples the local engine records."""
    from meshchaos.load import agent
    from meshchaos.load.classify import classifier_for_url

    run = dataclasses.replace(plan, triggers=tuple(triggers) or plan.triggers)
    lines: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    session = agent.AgentSession(LoadTarget(url), run, classifier_for_url(url), lines.put)
    # A host that gives up closes the stream: the agent stops on its broken stdout.
    res = api.exec(
        pod,
        namespace,
        container,
        list(agent.agent_command()),
        stdin=session.plan_line(),
        # Only triggers need the conversation (their "done" lines); otherwise stdin
        # closes after the plan, which the agent reads as the end of its input only.
        more_stdin=lines if run.triggers else None,
        deadline=session.wait_s + EXEC_SLACK_S,
        on_stdout=session.feed,
    )
    if res.returncode != 0:
        raise LoadError(
            f"load agent in {namespace}/{pod} exited with {res.returncode}: "
            f"{res.stderr.strip()[-500:] or 'no stderr'}"
        )
    result: LoadResult = session.finish()
    return result
