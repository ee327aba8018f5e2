"""The kind cluster of ``--backend kind``: create it, or reuse a running one, and delete it.

Created from ``manifests/kind/cluster.yaml`` (``src/meshchaos/data/kind/cluster.yaml``)
with the pinned node image by digest; that file publishes the ingress gateway's fixed
NodePort on ``127.0.0.1``, so the gateway URL is ``http://127.0.0.1:<host port>``.

A cold start runs, in order::

    kind get clusters
    kind create cluster --name N --config cluster.yaml --image <pin> --kubeconfig K --wait 180s
    kubectl --kubeconfig K --context kind-N wait --for=condition=Ready node --all --timeout=120s

A reuse (``--reuse-cluster``) checks, before it touches anything, that the cluster exists,
that its node runs the pinned image and that the port mapping is there::

    kind get clusters
    kind get nodes --name N
    docker inspect --format {{.Config.Image}} N-control-plane
    docker port N-control-plane 30080/tcp
    kind export kubeconfig --name N --kubeconfig K
    kubectl --kubeconfig K --context kind-N wait --for=condition=Ready node --all --timeout=120s

The kubeconfig ``K`` is a file of meshchaos's own (in the state dir): the user's
kubeconfig and current context are never read or changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshchaos.errors import MeshError
from meshchaos.manifests import data_dir
from meshchaos.mesh.kube._kubectl import Deadline, Kube
from meshchaos.mesh.kube._runner import Completed, Runner
from meshchaos.mesh.kube.pins import GATEWAY_HOST_PORT, GATEWAY_NODE_PORT, KIND_NODE_IMAGE

__all__ = [
    "CREATE_WAIT_S",
    "DEFAULT_CLUSTER",
    "KindCluster",
    "KindLifecycle",
    "KindRefused",
    "check_cluster_config",
    "cluster_config_path",
    "load_cluster_config",
    "same_image",
]

DEFAULT_CLUSTER = "meshchaos"
# kind's own --wait covers the control-plane node only; the node wait below then covers all.
CREATE_WAIT_S = 180
NODE_READY_S = 120
# Commands that ask, not build: a local call to kind or the engine.
_ASK_S = 30.0
# A cold create pulls the node image (about 1 GB unpacked) on a new machine.
_CREATE_S = 600.0
_DELETE_S = 120.0


class KindRefused(MeshError):
    """A kind cluster exists that meshchaos will not use (or would have to replace)."""


def cluster_config_path() -> Path:
    """``manifests/kind/cluster.yaml`` as packaged."""
    return data_dir() / "kind" / "cluster.yaml"


def check_cluster_config(doc: Any) -> list[str]:
    """The problems of a kind cluster config for meshchaos: it must be a kind Cluster whose
    control-plane node publishes the gateway NodePort on 127.0.0.1 at the pinned host port."""
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems = []
    if doc.get("kind") != "Cluster" or doc.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        problems.append("kind/apiVersion: must be Cluster / kind.x-k8s.io/v1alpha4")
    nodes = doc.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        return [*problems, "nodes: must list the control-plane node"]
    cp = [n for n in nodes if isinstance(n, dict) and n.get("role") == "control-plane"]
    if not cp:
        return [*problems, "nodes: no control-plane node"]
    want = {
        "containerPort": GATEWAY_NODE_PORT,
        "hostPort": GATEWAY_HOST_PORT,
        "listenAddress": "127.0.0.1",
        "protocol": "TCP",
    }
    mappings = cp[0].get("extraPortMappings") or []
    if want not in mappings:
        problems.append(
            f"nodes[control-plane].extraPortMappings: must contain {want} (found {mappings})"
        )
    if "image" in cp[0]:
        problems.append("nodes[control-plane].image: the node image is given by --image (pins)")
    return problems


@dataclass(frozen=True)
class KindCluster:
    """A kind cluster meshchaos runs on."""

    name: str
    kubeconfig: Path
    created: bool  # this run created it (so it deletes it, unless kept)

    @property
    def context(self) -> str:
        """kind names a cluster's context ``kind-<name>``."""
        return f"kind-{self.name}"

    @property
    def node(self) -> str:
        return f"{self.name}-control-plane"

    @property
    def gateway_url(self) -> str:
        """The gateway through the config's port mapping, on the host's loopback."""
        return f"http://127.0.0.1:{GATEWAY_HOST_PORT}"


class KindLifecycle:
    """Creates, reuses and deletes meshchaos's kind cluster through ``runner``."""

    def __init__(
        self,
        runner: Runner,
        *,
        engine: str = "docker",
        config_path: Path | None = None,
        node_image: str = KIND_NODE_IMAGE,
    ) -> None:
        self.runner = runner
        self.engine = engine
        self.config_path = config_path or cluster_config_path()
        self.node_image = node_image

    def up(self, name: str, kubeconfig: Path, *, reuse: bool, deadline: Deadline) -> KindCluster:
        """The cluster ``name``, created or (``reuse``) checked and reused; ready nodes."""
        exists = name in self._clusters(deadline)
        cluster = KindCluster(name, kubeconfig, created=not reuse)
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        if reuse:
            if not exists:
                raise KindRefused(
                    f"--reuse-cluster: there is no kind cluster named {name!r} "
                    f"(`kind get clusters` does not list it); run once without "
                    f"--reuse-cluster (and with --keep-cluster) to create it"
                )
            self._check_reusable(cluster, deadline)
            self._run(
                ["kind", "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig)],
                deadline.left(_ASK_S),
                f"writing the kubeconfig of kind cluster {name!r}",
            )
        else:
            if exists:
                raise KindRefused(
                    f"a kind cluster named {name!r} already exists; meshchaos neither "
                    f"replaces nor deletes a cluster it did not create in this run: pass "
                    f"--reuse-cluster to run on it, or delete it with "
                    f"`kind delete cluster --name {name}`"
                )
            load_cluster_config(self.config_path)  # a broken config fails before kind runs
            self._run(
                [
                    "kind",
                    "create",
                    "cluster",
                    "--name",
                    name,
                    "--config",
                    str(self.config_path),
                    "--image",
                    self.node_image,
                    "--kubeconfig",
                    str(kubeconfig),
                    "--wait",
                    f"{CREATE_WAIT_S}s",
                ],
                deadline.left(_CREATE_S),
                f"creating kind cluster {name!r}",
            )
        kube = Kube(self.runner, kubeconfig, cluster.context)
        kube.kubectl(
            "wait",
            "--for=condition=Ready",
            "node",
            "--all",
            f"--timeout={NODE_READY_S}s",
            timeout=deadline.left(NODE_READY_S + 15),
            what=f"waiting for the nodes of kind cluster {name!r} to be Ready",
        )
        return cluster

    def delete(self, cluster: KindCluster, *, timeout: float = _DELETE_S) -> None:
        """Delete ``cluster`` (kind's delete succeeds when it is already gone)."""
        argv = ["kind", "delete", "cluster", "--name", cluster.name]
        argv += ["--kubeconfig", str(cluster.kubeconfig)]
        self.runner.run(argv, timeout=timeout).check(f"deleting kind cluster {cluster.name!r}")

    def _clusters(self, deadline: Deadline) -> list[str]:
        done = self._run(
            ["kind", "get", "clusters"], deadline.left(_ASK_S), "listing kind clusters"
        )
        # With none, kind logs "No kind clusters found." on stderr and prints nothing.
        return [line.strip() for line in done.text.splitlines() if line.strip()]

    def _check_reusable(self, cluster: KindCluster, deadline: Deadline) -> None:
        name = cluster.name
        nodes = self._run(
            ["kind", "get", "nodes", "--name", name],
            deadline.left(_ASK_S),
            f"listing the nodes of kind cluster {name!r}",
        ).text.split()
        if cluster.node not in nodes:
            raise KindRefused(
                f"--reuse-cluster: kind cluster {name!r} has no node {cluster.node!r} "
                f"(its nodes: {', '.join(nodes) or 'none'}); it was not created by meshchaos"
            )
        image = self._run(
            [self.engine, "inspect", "--format", "{{.Config.Image}}", cluster.node],
            deadline.left(_ASK_S),
            f"reading the node image of kind cluster {name!r}",
        ).text.strip()
        if not same_image(image, self.node_image):
            raise KindRefused(
                f"--reuse-cluster: kind cluster {name!r} runs node image {image!r}, not the "
                f"pinned {self.node_image!r}; results would not be comparable. Delete it "
                f"(`kind delete cluster --name {name}`) and run without --reuse-cluster"
            )
        port = f"{GATEWAY_NODE_PORT}/tcp"
        done = self.runner.run(
            [self.engine, "port", cluster.node, port], timeout=deadline.left(_ASK_S)
        )
        published = done.text.split() if done.ok else []
        want = f"127.0.0.1:{GATEWAY_HOST_PORT}"
        if want not in published:
            found = ", ".join(published) or "nothing"
            raise KindRefused(
                f"--reuse-cluster: kind cluster {name!r} does not publish the gateway "
                f"NodePort {port} on {want} (`{self.engine} port` shows {found}); it was "
                f"not created from manifests/kind/cluster.yaml. Delete it "
                f"(`kind delete cluster --name {name}`) and run without --reuse-cluster"
            )

    def _run(self, argv: list[str], timeout: float, what: str) -> Completed:
        return self.runner.run(argv, timeout=timeout).check(what)


def same_image(found: str, pinned: str) -> bool:
    """Whether the node container runs the pinned image. By digest when the pin has one:
    Docker keeps the reference as given, Podman stores kind's pull name
    (``docker.io/kindest/node@sha256:...``, the tag dropped)."""
    if found == pinned:
        return True
    _, sep, digest = pinned.partition("@sha256:")
    return bool(sep) and found.endswith("@sha256:" + digest)


def load_cluster_config(path: Path) -> dict[str, Any]:
    """The kind config at ``path``, checked with :func:`check_cluster_config`."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems = check_cluster_config(doc)
    if problems:
        raise MeshError(f"{path}: " + "; ".join(problems))
    assert isinstance(doc, dict)
    return doc
