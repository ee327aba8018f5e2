"""The options of ``--backend kind|cluster``, for pytest and for ``meshchaos up``, in one place.

pytest: :func:`add_kube_options` (called with the plugin's ``meshchaos`` option group)
and :func:`kube_options` (the values, as keyword arguments of
:class:`~meshchaos.mesh.registry.BackendOptions`). CLI: :func:`add_kube_arguments`
and :func:`kube_arguments`, the same options on an argparse parser. Both sides share
one table, so a flag's name, help and meaning cannot drift apart.
"""

from __future__ import annotations

import argparse
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "KUBE_OPTIONS",
    "add_kube_arguments",
    "add_kube_options",
    "kube_arguments",
    "kube_options",
]


@dataclass(frozen=True)
class _Opt:
    flag: str
    dest: str  # the BackendOptions field
    help: str
    metavar: str | None = None  # None: a switch (store_true)


KUBE_OPTIONS: tuple[_Opt, ...] = (
    _Opt(
        "--kube-context",
        "kube_context",
        "the kube context of --backend cluster; it must also be allowed (--allow-context "
        "or MESHCHAOS_ALLOW_CONTEXT=NAME). The current context is never used",
        "NAME",
    ),
    _Opt(
        "--allow-context",
        "allow_context",
        "allow --backend cluster to create its namespaces on the --kube-context cluster",
    ),
    _Opt(
        "--reuse-cluster",
        "reuse_cluster",
        "--backend kind: run on the running kind cluster 'meshchaos' (its node image and "
        "gateway port mapping must match meshchaos's) instead of creating one",
    ),
    _Opt(
        "--keep-cluster",
        "keep_cluster",
        "--backend kind: keep the cluster at the end (for --reuse-cluster next time)",
    ),
    _Opt(
        "--gateway-url",
        "gateway_url",
        "--backend cluster: the ingress gateway's base URL, when its Service has no "
        "LoadBalancer address; the only non-loopback address load is sent to",
        "URL",
    ),
    _Opt(
        "--kubeconfig",
        "kubeconfig",
        "--backend cluster: the kubeconfig holding --kube-context (default: $KUBECONFIG "
        "or ~/.kube/config); only that context is copied into the run's own kubeconfig",
        "PATH",
    ),
)


class _Group(Protocol):
    def addoption(self, *names: str, **kw: Any) -> None: ...


class _Config(Protocol):
    def getoption(self, name: str) -> Any: ...


def add_kube_options(group: _Group) -> None:
    """Add the kube options to the plugin's option group (``parser.getgroup("meshchaos")``)."""
    for opt in KUBE_OPTIONS:
        if opt.metavar is None:
            group.addoption(opt.flag, action="store_true", default=False, help=opt.help)
        else:
            group.addoption(opt.flag, default=None, metavar=opt.metavar, help=opt.help)


def kube_options(config: _Config) -> dict[str, Any]:
    """The kube options' values as ``BackendOptions`` keyword arguments; a bad value
    raises ``pytest.UsageError`` saying what a valid one looks like."""
    values = {opt.dest: config.getoption(opt.dest) for opt in KUBE_OPTIONS}
    try:
        return _checked(values)
    except ValueError as exc:
        import pytest

        raise pytest.UsageError(f"meshchaos: {exc}") from None


def add_kube_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the kube options to an argparse parser (``meshchaos up``)."""
    group = parser.add_argument_group("kind and cluster backends")
    for opt in KUBE_OPTIONS:
        if opt.metavar is None:
            group.add_argument(opt.flag, dest=opt.dest, action="store_true", help=opt.help)
        else:
            group.add_argument(
                opt.flag, dest=opt.dest, default=None, metavar=opt.metavar, help=opt.help
            )


def kube_arguments(
    args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
) -> dict[str, Any]:
    """The parsed kube options as ``BackendOptions`` keyword arguments; a bad value is
    ``parser.error`` (exit 2 with the message) when a parser is given, else ``ValueError``."""
    values = {opt.dest: getattr(args, opt.dest) for opt in KUBE_OPTIONS}
    try:
        return _checked(values)
    except ValueError as exc:
        if parser is None:
            raise
        parser.error(str(exc))


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for switch in ("allow_context", "reuse_cluster", "keep_cluster"):
        out[switch] = bool(out[switch])
    url = out["gateway_url"]
    if url is not None:
        parsed = urllib.parse.urlsplit(str(url))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(
                f"--gateway-url {url!r} is not a base URL; give one such as "
                "--gateway-url http://203.0.113.7:80"
            )
    if out["kubeconfig"] is not None:
        out["kubeconfig"] = Path(str(out["kubeconfig"])).expanduser()
    if out["kube_context"] is not None and not str(out["kube_context"]).strip():
        raise ValueError("--kube-context is empty; give the context's name, e.g. staging")
    return out
