"""User errors end in one clear message and an exit code, never a traceback.

Exit 1: the input or the mesh is wrong (a policy that does not exist or is invalid, no
mesh running, a bad regex). Exit 2: a usage error, such as a workload that does not exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshchaos.cli import main
from meshchaos.mesh import registry
from meshchaos.mesh.handle import MeshHandle, write_handle

INVALID = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: -1}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_predict_from_an_unknown_workload_names_it_and_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "predict", "--from", "sleep")
    assert code == 2
    assert out == ""
    assert one_line(err) == (
        "meshchaos predict: no source workload 'sleep' in the app topology; known: client, gateway"
    )


def test_predict_with_a_missing_policy_file_names_the_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, err = run(capsys, "predict", "-f", str(missing))
    assert code == 1
    assert out == ""
    assert f"{missing}: no such file" in err


def test_predict_with_an_invalid_policy_names_path_resource_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(INVALID)
    code, out, err = run(capsys, "predict", "-f", str(bad))
    assert code == 1
    assert out == ""
    assert f"{bad}: VirtualService default/reviews: spec.http[0].route[0].weight" in err


def test_all_problems_of_all_files_are_reported_together(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(INVALID)
    code, _, err = run(capsys, "apply", "-f", "no-such-policy", "-f", str(bad))
    assert code == 1
    assert err.startswith("meshchaos apply: 2 problems found, nothing applied:")
    assert "no policy file 'no-such-policy'" in err
    assert "istio (has " in err
    assert "weight" in err


@pytest.mark.parametrize("verb", ["apply", "delete"])
def test_apply_or_delete_of_no_resources_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, verb: str
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    code, out, err = run(capsys, verb, "-f", str(empty), "--state-dir", str(tmp_path))
    assert (code, out) == (1, "")
    assert one_line(err) == (
        f"meshchaos {verb}: no objects passed to {verb}: no Istio resources in {empty}"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["get", "vs"],
        ["stats", "reviews-v2"],
        ["apply", "-f", "fault-ratings-abort-50pct-500"],
        ["delete", "-f", "fault-ratings-abort-50pct-500"],
    ],
)
def test_verbs_without_a_mesh_say_how_to_start_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    state_dir = tmp_path / "no-mesh-here"
    code, out, err = run(capsys, *argv, "--state-dir", str(state_dir))
    assert code == 1
    assert out == ""
    line = one_line(err)
    assert f"no mesh is running in {state_dir}" in line
    assert "meshchaos up" in line


def test_load_without_a_mesh_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "load", "/productpage", "--state-dir", str(tmp_path))
    assert code == 1
    assert one_line(err) == (
        f"meshchaos load: no mesh is running in {tmp_path}; "
        f"start one with `meshchaos up --state-dir {tmp_path}`"
    )


def test_load_against_a_mesh_whose_owner_died_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(gone.stdout)
    write_handle(tmp_path, MeshHandle("local", "http://127.0.0.1:9", owner_pid=pid))
    code, _, err = run(capsys, "load", "/productpage", "--state-dir", str(tmp_path))
    assert code == 1
    line = one_line(err)
    assert f"the mesh in {tmp_path} is not running (its owner, pid {pid}, is gone)" in line
    assert "meshchaos down" in line


def test_load_against_a_mesh_whose_owner_is_a_zombie_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = Path(f"/proc/{owner.pid}/stat")
        deadline = time.monotonic() + 10
        while " Z " not in stat.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)  # exited, not reaped: what SIGKILL of `up` under a shell may leave
        write_handle(tmp_path, MeshHandle("local", "http://127.0.0.1:9", owner_pid=owner.pid))
        code, _, err = run(capsys, "load", "/productpage", "--state-dir", str(tmp_path))
    finally:
        owner.wait()
    assert code == 1
    assert f"(its owner, pid {owner.pid}, is gone)" in one_line(err)


def test_load_from_an_unknown_client_exits_2_naming_the_known_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.BACKENDS, "fake", "cli_fakes:FakeLoadBackend")
    write_handle(tmp_path, MeshHandle("fake", "http://127.0.0.1:9", owner_pid=os.getpid()))
    code, _, err = run(
        capsys, "load", "http://httpbin:8000/get", "--from", "sleep", "--state-dir", str(tmp_path)
    )
    assert code == 2
    assert one_line(err) == (
        "meshchaos load: no in-mesh client 'sleep' in the running mesh; known: client"
    )


def test_a_handle_of_another_version_is_refused_naming_file_found_expected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old = {"backend": "local", "gateway_url": "http://127.0.0.1:9", "owner_pid": os.getpid()}
    (tmp_path / "mesh.json").write_text(json.dumps(old))
    code, _, err = run(capsys, "status", "--state-dir", str(tmp_path))
    assert code == 1
    assert one_line(err) == (
        f"meshchaos status: {tmp_path / 'mesh.json'}: found schema None version None, "
        "expected 'meshchaos.mesh-handle' version 1 (written by another meshchaos version?); "
        "stop that mesh with the meshchaos that started it, or `meshchaos down --force "
        f"--state-dir {tmp_path}`"
    )


def test_a_bad_filter_regex_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "stats", "client", "--filter", "(", "--state-dir", str(tmp_path))
    assert code == 1
    assert one_line(err).startswith("meshchaos stats: --filter '(' is not a valid regex:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "-H", "no-colon"], "invalid header 'no-colon': expected 'Name: value'"),
        (["predict", "--path", "http://httpbin:x/get"], "'http://httpbin:x/get': the port is"),
        (["load", "http://127.0.0.1:1/", "-H", "x"], "invalid header 'x'"),
        (["load", "http://127.0.0.1:1/", "-c", "0"], "concurrency must be in 1..1024"),
    ],
)
def test_bad_values_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert message in one_line(err)


def test_down_without_a_mesh_is_not_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "down", "--state-dir", str(tmp_path / "nothing"))
    assert (code, err) == (0, "")
    assert out == f"no mesh in {tmp_path / 'nothing'}\n"


def test_python_dash_m_runs_the_same_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "meshchaos.cli", "predict", "--from", "sleep"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "no source workload 'sleep'" in proc.stderr


@pytest.mark.parametrize("verb", ["up", "down", "status", "load"])
def test_a_state_dir_that_is_a_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, verb: str
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    extra = ["/productpage"] if verb == "load" else []
    with pytest.raises(SystemExit) as exit_info:
        main([verb, *extra, "--state-dir", str(afile)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --state-dir: {afile} exists and is not a directory" in err
    assert "Traceback" not in err


def test_a_policy_dir_that_does_not_exist_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "-f", "x", "--policy-dir", str(tmp_path / "nope")])
    assert exit_info.value.code == 2
    assert f"argument --policy-dir: {tmp_path / 'nope'} is not a directory" in (
        capsys.readouterr().err
    )
