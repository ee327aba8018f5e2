"""The kube options, on pytest's parser and on argparse: the same flags, the same values."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from meshchaos.mesh.kube.flags import (
    KUBE_OPTIONS,
    add_kube_arguments,
    add_kube_options,
    kube_arguments,
    kube_options,
)

FLAGS = [
    "--kube-context",
    "--allow-context",
    "--reuse-cluster",
    "--keep-cluster",
    "--gateway-url",
    "--kubeconfig",
]
DEFAULTS = {
    "kube_context": None,
    "allow_context": False,
    "reuse_cluster": False,
    "keep_cluster": False,
    "gateway_url": None,
    "kubeconfig": None,
}


def cli(*argv: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="meshchaos up")
    add_kube_arguments(parser)
    return kube_arguments(parser.parse_args(list(argv)), parser)


def test_the_flags_are_exactly_these() -> None:
    assert [o.flag for o in KUBE_OPTIONS] == FLAGS


def test_cli_defaults_are_the_backend_options_defaults() -> None:
    assert cli() == DEFAULTS


def test_cli_values() -> None:
    got = cli(
        "--kube-context",
        "staging",
        "--allow-context",
        "--gateway-url",
        "http://gw:80",
        "--kubeconfig",
        "~/k.yaml",
        "--reuse-cluster",
        "--keep-cluster",
    )
    assert got == {
        "kube_context": "staging",
        "allow_context": True,
        "reuse_cluster": True,
        "keep_cluster": True,
        "gateway_url": "http://gw:80",
        "kubeconfig": Path("~/k.yaml").expanduser(),
    }


def test_a_bad_gateway_url_is_a_usage_error_saying_what_a_valid_one_looks_like(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        cli("--gateway-url", "gw:80")
    assert info.value.code == 2
    assert "such as --gateway-url http://203.0.113.7:80" in capsys.readouterr().err


class Group:
    def __init__(self) -> None:
        self.parser = argparse.ArgumentParser()

    def addoption(self, *names: str, **kw: Any) -> None:
        self.parser.add_argument(*names, **kw)


class Config:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns

    def getoption(self, name: str) -> Any:
        return getattr(self.ns, name)


def test_pytest_options_give_the_same_values() -> None:
    group = Group()
    add_kube_options(group)
    ns = group.parser.parse_args(["--kube-context", "staging", "--allow-context"])
    assert kube_options(Config(ns)) == {
        **DEFAULTS,
        "kube_context": "staging",
        "allow_context": True,
    }


def test_pytest_bad_value_is_a_usage_error() -> None:
    group = Group()
    add_kube_options(group)
    ns = group.parser.parse_args(["--gateway-url", "nope"])
    with pytest.raises(pytest.UsageError, match="not a base URL"):
        kube_options(Config(ns))


def test_on_pytests_own_parser(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "from meshchaos.mesh.kube.flags import add_kube_options, kube_options\n"
        "def pytest_addoption(parser):\n"
        "    add_kube_options(parser.getgroup('kubetest'))\n"
        "def pytest_configure(config):\n"
        "    config.kube = kube_options(config)\n"
        "def pytest_report_header(config):\n"
        "    return 'kube=' + repr(sorted(config.kube.items()))\n"
    )
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess(
        "-p", "no:meshchaos", "--reuse-cluster", "--kubeconfig", "/k"
    )
    assert result.ret == 0
    out = result.stdout.str()
    assert "('reuse_cluster', True)" in out
    assert "('kubeconfig', PosixPath('/k'))" in out
