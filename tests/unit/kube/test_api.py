"""KubeApi against the fake API server: the requests it sends, and the errors it raises."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import fake_api
import fake_api_ws
import pytest

from meshchaos.errors import MeshError
from meshchaos.mesh.kube.api import KubeApi
from meshchaos.mesh.kube.errors import KubeApiError, NotFound


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[fake_api.Cluster]:
    c = fake_api.Cluster(tmp_path)
    yield c
    c.close()


@pytest.fixture
def api(cluster: fake_api.Cluster) -> Iterator[KubeApi]:
    a = KubeApi(cluster.kubeconfig, cluster.context, request_timeout=5)
    yield a
    a.close()


VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "ns1"},
    "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]},
}


def test_the_context_must_be_named_and_exist(cluster: fake_api.Cluster) -> None:
    with pytest.raises(MeshError, match="named explicitly"):
        KubeApi(cluster.kubeconfig, "")
    with pytest.raises(MeshError, match=r"no context 'prod'; it has: kind-meshchaos"):
        KubeApi(cluster.kubeconfig, "prod")
    with pytest.raises(MeshError, match="does not exist"):
        KubeApi(cluster.kubeconfig.with_name("missing"), "kind-meshchaos")


def test_apply_is_server_side_apply_with_our_field_manager_and_strict_validation(
    api: KubeApi, cluster: fake_api.Cluster
) -> None:
    out = api.apply(VS)
    assert out["metadata"]["resourceVersion"]
    assert cluster.kube.log == [
        "PATCH /apis/networking.istio.io/v1/namespaces/ns1/virtualservices/reviews"
        "?fieldManager=meshchaos&fieldValidation=Strict&force=true"
    ]
    api.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns1"}}
    )
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}})
    assert [e.split("?")[0] for e in cluster.kube.log[1:]] == [
        "PATCH /api/v1/namespaces/ns1/configmaps/c",
        "PATCH /api/v1/namespaces/ns1",
    ]


def test_a_strict_validation_error_names_the_kind_object_and_field(
    api: KubeApi, cluster: fake_api.Cluster
) -> None:
    cluster.kube.unknown_fields = {"retrys"}
    bad = {**VS, "spec": {"hosts": ["reviews"], "http": [{"retrys": {"attempts": 3}}]}}
    with pytest.raises(KubeApiError) as info:
        api.apply(bad)
    msg = str(info.value)
    assert msg.startswith("apply VirtualService ns1/reviews: BadRequest (400): ")
    assert "spec.http[0].retrys: field not declared in schema" in msg
    assert info.value.causes == [("spec.http[0].retrys", "field not declared in schema")]
    assert cluster.kube.names("virtualservices", "ns1") == []


def test_get_list_delete_and_not_found(api: KubeApi, cluster: fake_api.Cluster) -> None:
    api.apply(VS)
    assert api.get("VirtualService", "reviews", "ns1")["spec"]["hosts"] == ["reviews"]
    assert [o["metadata"]["name"] for o in api.list_objects("VirtualService", "ns1")] == ["reviews"]
    assert api.delete("VirtualService", "reviews", "ns1") is True
    assert api.delete("VirtualService", "reviews", "ns1") is False
    assert api.find("VirtualService", "reviews", "ns1") is None
    with pytest.raises(NotFound, match=r"get VirtualService ns1/reviews: NotFound \(404\)"):
        api.get("VirtualService", "reviews", "ns1")


def test_an_unknown_kind_or_a_wrong_api_version_is_refused(api: KubeApi) -> None:
    with pytest.raises(MeshError, match="does not manage kind 'Secret'"):
        api.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    with pytest.raises(MeshError, match=r"expected 'networking\.istio\.io/v1'"):
        api.apply({**VS, "apiVersion": "networking.istio.io/v1alpha3"})


def test_an_unreachable_server_is_a_mesh_error(cluster: fake_api.Cluster) -> None:
    a = KubeApi(cluster.kubeconfig, cluster.context, request_timeout=2)
    cluster.close()
    with pytest.raises(KubeApiError, match="could not be reached"):
        a.list_objects("Namespace")


def _pod(api: KubeApi, cluster: fake_api.Cluster) -> str:
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}})
    cluster.kube.put("pods", {"metadata": {"name": "p", "namespace": "ns1"}})
    return "p"


@pytest.mark.parametrize("protocol", [fake_api_ws.V5, fake_api_ws.V4])
def test_exec_keeps_stdout_stderr_and_exit_code_apart(
    api: KubeApi, cluster: fake_api.Cluster, protocol: str
) -> None:
    cluster.kube.protocols = (protocol,)
    seen: list[tuple[str, list[str], bytes]] = []

    def handler(pod: str, c: str, cmd: list[str], stdin: bytes) -> tuple[list[bytes], bytes, int]:
        seen.append((c, cmd, stdin))
        return [b"a" * 70_000, b"tail\n"], b"a warning\n", 3

    cluster.kube.exec_handler = handler
    res = api.exec(_pod(api, cluster), "ns1", "istio-proxy", ["cat"], deadline=10, stdin=b"{}\n")
    assert res.stdout == b"a" * 70_000 + b"tail\n"
    assert res.stderr == "a warning\n"
    assert res.returncode == 3
    assert seen == [("istio-proxy", ["cat"], b"{}\n")]


def test_exec_streams_stdout_to_a_callback(api: KubeApi, cluster: fake_api.Cluster) -> None:
    cluster.kube.exec_handler = lambda *_: ([b'{"t":1}\n', b'{"t":2}\n'], b"", 0)
    got: list[bytes] = []
    res = api.exec(_pod(api, cluster), "ns1", "c", ["x"], deadline=10, on_stdout=got.append)
    assert b"".join(got) == b'{"t":1}\n{"t":2}\n'
    assert res.stdout == b""
    assert res.returncode == 0


def test_exec_in_a_missing_pod_names_it(api: KubeApi, cluster: fake_api.Cluster) -> None:
    with pytest.raises(MeshError, match=r"exec \['x'\] in ns1/gone \(c\): pods \"gone\" not found"):
        api.exec("gone", "ns1", "c", ["x"], deadline=10)


def test_an_exec_that_does_not_finish_is_cut_at_its_deadline(
    api: KubeApi, cluster: fake_api.Cluster
) -> None:
    release = threading.Event()

    def hang(*_: object) -> tuple[list[bytes], bytes, int]:
        release.wait(10)  # the server side stays silent until the test ends
        return [], b"", 0

    cluster.kube.exec_handler = hang
    t0 = time.monotonic()
    with pytest.raises(MeshError, match=r"not finished within 0\.5 s"):
        api.exec(_pod(api, cluster), "ns1", "c", ["sleep"], deadline=0.5)
    assert time.monotonic() - t0 < 3
    release.set()
