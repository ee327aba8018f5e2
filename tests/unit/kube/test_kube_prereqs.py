"""Prerequisites: every missing tool in one message, with how to install it."""

from __future__ import annotations

import json

import pytest
from recorded_runner import RecordedRunner, Step, step

from meshchaos.errors import BackendUnavailable, PrerequisiteMissing
from meshchaos.mesh.kube.prereqs import Tools, check_prerequisites

KUBECTL_JSON = json.dumps({"clientVersion": {"gitVersion": "v1.36.1"}})
DOCKER_DOWN = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
    "Is the docker daemon running?\n"
)


def docker_ok() -> Step:
    return step("docker", "info", "--format", "{{.ServerVersion}}", stdout="28.2.2\n")


def kind_ok() -> Step:
    return step("kind", "version", stdout="kind v0.32.0 go1.24.4 linux/amd64\n")


def kubectl_ok() -> Step:
    return step("kubectl", "version", "--client", "-o", "json", stdout=KUBECTL_JSON)


def check(steps: list[Step], backend: str = "kind", env: dict[str, str] | None = None) -> str:
    runner = RecordedRunner(steps)
    with pytest.raises(PrerequisiteMissing) as info:
        check_prerequisites(runner, backend, env=env or {})
    runner.assert_done()
    assert isinstance(info.value, BackendUnavailable)  # the plugin's and CLI's clean path
    return str(info.value)


def test_all_present_gives_their_versions() -> None:
    runner = RecordedRunner([docker_ok(), kind_ok(), kubectl_ok()])
    tools = check_prerequisites(runner, "kind", env={})
    runner.assert_done()
    assert tools == Tools("docker 28.2.2", "kind v0.32.0 go1.24.4 linux/amd64", "v1.36.1")


def test_docker_engine_down_is_one_message_naming_the_engine_and_how_to_get_it() -> None:
    down = step(
        "docker", "info", "--format", "{{.ServerVersion}}", returncode=1, stderr=DOCKER_DOWN
    )
    msg = check([down, kind_ok(), kubectl_ok()])
    assert (
        msg.splitlines()[0]
        == "--backend kind cannot start: 1 prerequisite is missing on this machine:"
    )
    assert (
        "Docker engine: the `docker` command is installed, but `docker info` reached no engine"
        in msg
    )
    assert "Cannot connect to the Docker daemon" in msg
    assert "https://docs.docker.com/engine/install/" in msg
    assert "sudo systemctl start docker" in msg
    assert msg.endswith("Without them, run on the embedded mesh: --backend local.")
    assert "Traceback" not in msg


def test_docker_not_installed() -> None:
    missing = step("docker", "info", "--format", "{{.ServerVersion}}", missing=True)
    msg = check([missing, kind_ok(), kubectl_ok()])
    assert "Docker engine: the `docker` command is not installed." in msg


def test_an_engine_that_does_not_answer_counts_as_down() -> None:
    hung = step("docker", "info", "--format", "{{.ServerVersion}}", timeout=True)
    assert "`docker info` got no answer within 8 s" in check([hung, kind_ok(), kubectl_ok()])


def test_kind_missing_names_the_pinned_release_and_how_to_install_it() -> None:
    msg = check([docker_ok(), step("kind", "version", missing=True), kubectl_ok()])
    assert "1 prerequisite is missing" in msg
    assert "  - kind: not found on PATH." in msg
    assert "go install sigs.k8s.io/kind@v0.32.0" in msg
    assert "https://github.com/kubernetes-sigs/kind/releases/tag/v0.32.0" in msg


def test_kubectl_missing() -> None:
    msg = check(
        [docker_ok(), kind_ok(), step("kubectl", "version", "--client", "-o", "json", missing=True)]
    )
    assert "  - kubectl: not found on PATH." in msg
    assert "https://kubernetes.io/docs/tasks/tools/" in msg


def test_everything_missing_is_still_one_message_listing_each() -> None:
    msg = check(
        [
            step(
                "docker", "info", "--format", "{{.ServerVersion}}", returncode=1, stderr=DOCKER_DOWN
            ),
            step("kind", "version", missing=True),
            step("kubectl", "version", "--client", "-o", "json", missing=True),
        ]
    )
    assert "3 prerequisites are missing" in msg
    assert [line.split(":")[0] for line in msg.splitlines() if line.startswith("  - ")] == [
        "  - Docker engine",
        "  - kind",
        "  - kubectl",
    ]


def test_podman_is_checked_when_kind_is_told_to_use_it() -> None:
    down = step("podman", "info", "--format", "{{.Version.Version}}", missing=True)
    msg = check([down, kind_ok(), kubectl_ok()], env={"KIND_EXPERIMENTAL_PROVIDER": "podman"})
    assert "Podman: the `podman` command is not installed." in msg


def test_the_cluster_backend_needs_kubectl_only() -> None:
    runner = RecordedRunner([kubectl_ok()])
    assert check_prerequisites(runner, "cluster", env={}) == Tools(kubectl="v1.36.1")
    runner.assert_done()
