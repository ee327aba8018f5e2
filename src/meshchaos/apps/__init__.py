"""Our Bookinfo and httpbin, plus the in-mesh client, for the local mesh.

* ``catalog``: the workloads as data (names, labels, env, replicas).
* ``productpage``, ``details``, ``reviews``, ``ratings``, ``httpbin``: one app each,
  built by ``make_app(env, outbound) -> aiohttp.web.Application``.
* ``host`` / ``host_client``: many app instances in one process, driven over
  JSON lines (``meshchaos.mesh.local.supervisor.spawn_app_host()`` starts one and
  returns its ``AppHostClient``).

Env ``MESHCHAOS_TIMEOUT_SCALE`` (per instance) scales the apps' hard-coded durations
for fast tests; ``MESHCHAOS_SEED`` seeds their randomness. Nothing is imported here,
so that the app host starts fast.
"""
