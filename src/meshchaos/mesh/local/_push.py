"""Push a set of Istio resources to every proxy of a local mesh and wait until they run it.

Shared by the config verbs of :class:`~meshchaos.mesh.local.mesh.LocalMesh` (apply,
delete) and by the runtime (the baseline at start, new endpoints after restart/scale).
The caller holds the state dir's lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meshchaos.errors import MeshError
from meshchaos.istio.model import Resource
from meshchaos.mesh.local import xds
from meshchaos.mesh.local._launch import log_tail
from meshchaos.mesh.local.admin import AdminError, EnvoyAdmin
from meshchaos.mesh.local.state import MeshState, StateDir

__all__ = ["SYNC_TIMEOUT", "Pushed", "push"]

SYNC_TIMEOUT = 10.0  # seconds for every proxy to run a pushed config


@dataclass(frozen=True)
class Pushed:
    """A config every live proxy runs: its version and what the mesh could not honour."""

    version: str
    warnings: tuple[str, ...] = ()


def push(
    sd: StateDir,
    state: MeshState,
    resources: Sequence[Resource],
    *,
    timeout: float = SYNC_TIMEOUT,
    fresh: bool = False,
) -> Pushed:
    """Translate for every proxy, write what changed, wait for it; caller holds the lock.

    On failure the previous files are restored (under a newer version) and a
    :class:`MeshError` names the proxies that did not sync, with their log tails and
    rejection counters. On success ``state`` records ``resources`` and is saved.
    ``fresh``: every Envoy just started and has rejected nothing yet.
    """
    state.version += 1
    version = str(state.version)
    rendered, warnings = xds.render(state, resources, version)
    admins = live_admins(state)
    # fresh: Envoys that just started have rejected nothing; skip asking each of them.
    rejected_before = {n: 0 for n in admins} if fresh else xds.rejection_counts(admins)
    written = {name: xds.write_changed(sd.xds_dir(name), files) for name, files in rendered.items()}
    expect = {name: exp for name, (exp, _) in written.items() if name in admins}
    missing = xds.wait_synced(admins, expect, timeout, rejected_before)
    if missing:
        detail = _diagnose(sd, state, missing)
        state.version += 1
        back = {
            name: xds.restore(sd.xds_dir(name), prev, str(state.version))
            for name, (_, prev) in written.items()
        }
        sd.save(state)  # the version moved on; the resources did not change
        xds.wait_synced(admins, {n: e for n, e in back.items() if n in admins}, timeout)
        raise MeshError(
            f"config version {version} was rejected by or not running on "
            f"{', '.join(missing)} (deadline {timeout:.0f} s); rolled back to the previous "
            f"config.\n{detail}"
        )
    state.resources = [{"source": r.source, "raw": r.raw} for r in resources]
    sd.save(state)
    return Pushed(version, tuple(warnings))


def live_admins(state: MeshState) -> Mapping[str, EnvoyAdmin]:
    """Admin clients of the proxies that are alive and have announced their admin address."""
    return {n: EnvoyAdmin(r.admin) for n, r in state.proxies.items() if r.alive and r.admin}


def _diagnose(sd: StateDir, state: MeshState, names: Sequence[str]) -> str:
    lines = []
    for name in names[:3]:
        rec = state.proxies[name]
        try:
            rejected = EnvoyAdmin(rec.admin).rejections() or "none"
        except AdminError as exc:
            rejected = f"admin unreachable ({exc})"
        lines.append(f"  {name}: update_rejected: {rejected}; log tail:")
        lines.append(log_tail(sd.proxy_dir(name) / "envoy.log"))
    return "\n".join(lines)
