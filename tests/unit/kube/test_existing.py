"""--backend cluster: the context fence, the private kubeconfig, the gateway address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recorded_runner import RecordedRunner, step

from meshchaos.errors import MeshError
from meshchaos.mesh.kube._kubectl import Deadline, Kube
from meshchaos.mesh.kube.existing import (
    ContextRefused,
    check_context,
    find_gateway_url,
    private_kubeconfig,
)


def deadline() -> Deadline:
    return Deadline(60, "opening the cluster")


def test_no_context_named_is_refused_saying_the_current_one_is_never_used() -> None:
    with pytest.raises(ContextRefused) as info:
        check_context(None, allow_context=True, env={})
    msg = str(info.value)
    assert "--kube-context NAME" in msg
    assert "never runs on the current context" in msg


def test_a_named_but_unallowed_context_is_refused_naming_it_and_both_ways() -> None:
    with pytest.raises(ContextRefused) as info:
        check_context("prod-eu", allow_context=False, env={})
    msg = str(info.value)
    assert "refuses kube context 'prod-eu'" in msg
    assert "--allow-context" in msg
    assert "MESHCHAOS_ALLOW_CONTEXT=prod-eu" in msg


def test_the_env_allows_only_the_context_it_names() -> None:
    env = {"MESHCHAOS_ALLOW_CONTEXT": "staging"}
    assert check_context("staging", allow_context=False, env=env) == "staging"
    with pytest.raises(ContextRefused):
        check_context("prod-eu", allow_context=False, env=env)


def test_the_option_allows_the_named_context() -> None:
    assert check_context("staging", allow_context=True, env={}) == "staging"


def test_the_private_kubeconfig_holds_that_context_only_and_is_private(tmp_path: Path) -> None:
    argv = (
        "kubectl",
        "config",
        "view",
        "--minify",
        "--flatten",
        "--raw",
        "--context",
        "staging",
        "--kubeconfig",
        "/home/u/.kube/config",
    )
    runner = RecordedRunner([step(*argv, stdout="apiVersion: v1\nkind: Config\n")])
    dest = private_kubeconfig(
        runner,
        "staging",
        tmp_path / "kubeconfig",
        source=Path("/home/u/.kube/config"),
        deadline=deadline(),
    )
    runner.assert_done()
    assert dest.read_text().startswith("apiVersion: v1")
    assert dest.stat().st_mode & 0o777 == 0o600


def test_a_context_missing_from_the_kubeconfig_is_refused(tmp_path: Path) -> None:
    argv = ("kubectl", "config", "view", "--minify", "--flatten", "--raw", "--context", "nope")
    runner = RecordedRunner(
        [step(*argv, returncode=1, stderr='error: context "nope" does not exist')]
    )
    with pytest.raises(ContextRefused, match="'nope' is not in your kubeconfig"):
        private_kubeconfig(runner, "nope", tmp_path / "k", source=None, deadline=deadline())
    assert not (tmp_path / "k").exists()


SVC = (
    "kubectl",
    "--kubeconfig",
    "/s/kubeconfig",
    "--context",
    "staging",
    "get",
    "-n",
    "istio-system",
    "service",
    "istio-ingressgateway",
    "-o",
    "json",
)


def service(ingress: list[dict[str, str]]) -> str:
    return json.dumps(
        {
            "spec": {
                "ports": [{"name": "status-port", "port": 15021}, {"name": "http2", "port": 80}]
            },
            "status": {"loadBalancer": {"ingress": ingress}},
        }
    )


def kube(stdout: str) -> tuple[Kube, RecordedRunner]:
    runner = RecordedRunner([step(*SVC, stdout=stdout)])
    return Kube(runner, Path("/s/kubeconfig"), "staging"), runner


def test_the_gateway_is_the_services_load_balancer_address() -> None:
    k, runner = kube(service([{"ip": "203.0.113.7"}]))
    assert find_gateway_url(k, explicit=None, deadline=deadline()) == "http://203.0.113.7:80"
    runner.assert_done()


def test_a_load_balancer_hostname_works_too() -> None:
    k, _ = kube(service([{"hostname": "gw.example.com"}]))
    assert find_gateway_url(k, explicit=None, deadline=deadline()) == "http://gw.example.com:80"


def test_no_address_says_to_pass_gateway_url() -> None:
    k, _ = kube(service([]))
    with pytest.raises(MeshError, match="pass --gateway-url"):
        find_gateway_url(k, explicit=None, deadline=deadline())


def test_an_explicit_gateway_url_is_used_as_given_without_asking_the_cluster() -> None:
    runner = RecordedRunner([])
    k = Kube(runner, Path("/s/kubeconfig"), "staging")
    got = find_gateway_url(k, explicit="http://10.0.0.5:8080/", deadline=deadline())
    assert got == "http://10.0.0.5:8080"
    assert runner.calls == []


def test_an_explicit_gateway_url_that_is_not_one_is_refused() -> None:
    k = Kube(RecordedRunner([]), Path("/s/kubeconfig"), "staging")
    with pytest.raises(MeshError, match="give a base URL"):
        find_gateway_url(k, explicit="10.0.0.5:8080", deadline=deadline())
