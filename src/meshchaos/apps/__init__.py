"""Our Bookinfo and httpbin, plus the in-mesh client, for the local mesh.

* ``facts``: Bookinfo's and httpbin's facts as data (services, versions, instances, call
  edges with the clients' timeouts and attempts, propagated headers), written once; the
  oracle's topology, ``catalog`` and the apps' constants derive from it.
* ``catalog``: the local mesh's workloads (names, labels, env, replicas), from ``facts``.
* ``productpage``, ``details``, ``reviews``, ``ratings``, ``httpbin``: one app each,
  built by ``make_routes(env, outbound) -> _routing.Routes`` (plain async handlers), and
  ``make_app(env, outbound) -> aiohttp.web.Application`` serving the same handlers.
* ``_server`` / ``_outbound`` / ``_wire``: the lean HTTP/1.1 server the app host runs the
  apps on, and their keep-alive client pool to the sidecar.
* ``host`` / ``host_client``: many app instances in one process, driven over
  JSON lines (``meshchaos.mesh.local.supervisor.spawn_app_host()`` starts one and
  returns its ``AppHostClient``).

Env ``MESHCHAOS_TIMEOUT_SCALE`` (per instance) scales the apps' hard-coded durations
for fast tests; ``MESHCHAOS_SEED`` seeds their randomness. Nothing is imported here,
so that the app host starts fast.
"""
