"""The meshchaos pytest plugin: options, markers, backends, policy rollback, records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshchaos.pytest_plugin import FAMILIES
from meshchaos.report.record import read_run

HERE = Path(__file__).resolve().parent

# A conftest for pytester runs: the installed plugin's fixtures, with `mesh` replaced by
# the fake (as a user's conftest can override any fixture).
FAKE_CONFTEST = f"""
import sys
sys.path[:0] = [{str(HERE)!r}]
import pytest
from fake_mesh import FakeMesh

FAKE = FakeMesh()

@pytest.fixture(scope="session")
def mesh():
    yield FAKE
"""

POLICY = """# Route reviews to v1.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project of a user's own: the fake mesh, and a policy dir named in its ini file."""
    pytester.makeconftest(FAKE_CONFTEST)
    pytester.makeini("[pytest]\nmeshchaos_policy_dirs = policies\n")
    (pytester.path / "policies").mkdir()
    (pytester.path / "policies" / "reviews-v1.yaml").write_text(POLICY)
    return pytester


def test_options_are_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    assert "meshchaos" in out
    for option in (
        "--backend",
        "--kube-context",
        "--keep-mesh",
        "--reports-dir",
        "--alpha",
        "--min-effect",
        "--policy-dir",
        "meshchaos_policy_dirs",
        "meshchaos_scenario_paths",
    ):
        assert option in out


@pytest.mark.parametrize("value", ["2", "0", "-0.1", "1", "abc", "nan"])
def test_bad_alpha_says_what_valid_looks_like(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest(f"--alpha={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--alpha: '{value}' is not a valid value; give a number strictly between 0 and 1, "
            "for example --alpha 0.01*"
        ]
    )


def test_bad_min_effect(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--min-effect=5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--min-effect: '5' is not a valid value*--min-effect 0.05*"])


def test_bad_backend(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--backend=minikube")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid choice: 'minikube'*local*kind*cluster*"])


def test_markers_registered(pytester: pytest.Pytester) -> None:
    out = pytester.runpytest("--markers").stdout.str()
    for name in (*FAMILIES, "scenario", "integration"):
        assert f"@pytest.mark.{name}:" in out
    marks = "\n".join(f"@pytest.mark.{name}" for name in FAMILIES)
    pytester.makepyfile(f"import pytest\n{marks}\ndef test_x():\n    pass\n")
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_policy_rolled_back_after_failure(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        from conftest import FAKE

        def test_fails_with_policy(policy):
            policy("reviews-v1.yaml")
            assert len(FAKE.resources()) == 1
            assert False, "the scenario failed"

        def test_next_sees_baseline(mesh):
            assert mesh.resources() == []
            assert FAKE.log == ["apply VirtualService default/reviews",
                                "delete VirtualService default/reviews"]
        """
    )
    suite.runpytest("-p", "no:randomly").assert_outcomes(passed=1, failed=1)


def test_policy_rollback_failure_is_reported(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        from conftest import FAKE

        def test_delete_breaks(policy):
            policy("reviews-v1.yaml")
            FAKE.fail_delete = True
        """
    )
    result = suite.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*policy rollback did not restore the mesh*",
            "*rolling back VirtualService default/reviews: RuntimeError: simulated delete failure*",
        ]
    )


def test_unknown_policy_file_names_known_ones(suite: pytest.Pytester) -> None:
    suite.makepyfile("def test_x(policy):\n    policy('nope.yaml')\n")
    result = suite.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*meshchaos: no policy file 'nope.yaml'*policies (has reviews-v1)*istio (has *"]
    )
    assert "Traceback" not in result.stdout.str()
    assert "find_policy" not in result.stdout.str()  # one line, not the library's frames


def test_policy_names_are_looked_up_in_order(suite: pytest.Pytester) -> None:
    # The user's dir first, then the packaged samples; an explicit path as it is.
    (suite.path / "mine.yaml").write_text(POLICY)
    suite.makepyfile(
        """
        def test_x(policy):
            assert policy.resolve("reviews-v1").parent.name == "policies"
            assert policy.resolve("virtual-service-all-v1").parent.name == "istio"
            assert policy.resolve("mine.yaml").name == "mine.yaml"
        """
    )
    suite.runpytest().assert_outcomes(passed=1)


def test_invalid_policy_fails_with_the_field_path(suite: pytest.Pytester) -> None:
    (suite.path / "policies" / "bad.yaml").write_text(
        POLICY.replace("subset: v1", "subset: v1\n      weight: -1")
    )
    suite.makepyfile("def test_x(policy):\n    policy('bad')\n")
    result = suite.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*bad.yaml: VirtualService default/reviews: spec.http[[]0].route[[]0].weight*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_chaos_fixture_makes_a_scenario(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        from meshchaos import Chaos
        from meshchaos.stats import current_alpha

        def test_c(chaos: Chaos, request):
            assert isinstance(chaos, Chaos)
            assert request.node.get_closest_marker("scenario")
            assert current_alpha() == 0.01 / 2

        def test_d(chaos):
            chaos.apply("reviews-v1")

        def test_not_a_scenario(request):
            assert not request.node.get_closest_marker("scenario")
        """
    )
    suite.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_record_writes_per_test_files_and_run_json(suite: pytest.Pytester) -> None:
    (suite.path / "scenarios").mkdir()
    (suite.path / "scenarios" / "test_s.py").write_text(
        "import pytest\n"
        "pytestmark = pytest.mark.routing\n"
        "@pytest.mark.parametrize('x', [pytest.param(1, id='one'), pytest.param(2, id='two')])\n"
        "def test_s(x, record, policy):\n"
        "    policy('reviews-v1.yaml')\n"
        "    record.set('x', x)\n"
        "    assert x == 1\n"
    )
    result = suite.runpytest("--reports-dir", "out", "scenarios")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*routing*1 passed, 1 failed*alpha per scenario 0.005*"])
    (run_dir,) = [p for p in (suite.path / "out").iterdir() if p.is_dir()]  # + history.jsonl
    one = json.loads((run_dir / "test_s.test_s[one].json").read_text())
    two = json.loads((run_dir / "test_s.test_s[two].json").read_text())
    assert (one["outcome"], one["extra"]["x"], one["family"]) == ("passed", 1, "routing")
    assert [p["name"] for p in one["policies"]] == ["reviews-v1.yaml"]
    assert len(one["policies"][0]["sha256"]) == 64
    assert "VirtualService" in one["policies"][0]["text"]
    assert one["phases"] == {"setup": "passed", "call": "passed", "teardown": "passed"}
    assert one["alpha"] == pytest.approx(0.005)
    assert two["outcome"] == "failed"
    assert "assert 2 == 1" in two["failure"]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["families"]["routing"]["outcomes"] == {"passed": 1, "failed": 1}
    assert run["outcomes"] == {"passed": 1, "failed": 1}
    assert len(run["records"]) == 2
    # Both read back through the one reader (schema and version checked).
    assert set(read_run(run_dir).scenarios) == {one["id"], two["id"]}


def test_a_test_sizing_several_phases_records_its_least_sensitive_sample(
    suite: pytest.Pytester,
) -> None:
    (suite.path / "scenarios").mkdir()
    (suite.path / "scenarios" / "test_p.py").write_text(
        "import pytest\n"
        "from meshchaos import RequestClass\n"
        "pytestmark = pytest.mark.routing\n"
        "def test_p(chaos):\n"
        "    prediction = chaos.predict(RequestClass(path='/productpage'))\n"
        "    capped = chaos.size(prediction, max_requests=100)\n"
        "    planned = chaos.size(prediction, max_requests=20_000)\n"
        "    assert capped.capped and not planned.capped\n"
    )
    result = suite.runpytest("--reports-dir", "out", "scenarios")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*routing*1 passed*1 below planned n*"])
    (run_dir,) = [p for p in (suite.path / "out").iterdir() if p.is_dir()]
    sizing = json.loads((run_dir / "test_p.test_p.json").read_text())["sizing"]
    assert sizing["used"] == 100 < sizing["planned"]


def test_junit_carries_key_figures_through_xdist(suite: pytest.Pytester) -> None:
    (suite.path / "test_j.py").write_text(
        "import pytest\n"
        "@pytest.mark.routing\n"
        "@pytest.mark.parametrize('x', [pytest.param(1, id='one'), pytest.param(2, id='two')])\n"
        "def test_j(x, record):\n"
        "    assert x == 1\n"
    )
    result = suite.runpytest(
        "--reports-dir",
        "out",
        "-n",
        "1",
        "--junitxml",
        "junit.xml",
        "-o",
        "junit_family=xunit1",
        "test_j.py",
    )
    result.assert_outcomes(passed=1, failed=1)
    import xml.etree.ElementTree as ET

    cases = ET.parse(suite.path / "junit.xml").getroot().iter("testcase")
    props = {
        c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")} for c in cases
    }
    assert props["test_j[one]"]["meshchaos.outcome"] == "passed"
    assert props["test_j[two]"]["meshchaos.outcome"] == "failed"
    assert props["test_j[one]"]["meshchaos.requests"] == "0"


def test_record_carries_a_teardown_failure(suite: pytest.Pytester) -> None:
    (suite.path / "test_t.py").write_text(
        "import pytest\n"
        "@pytest.fixture\n"
        "def broken():\n"
        "    yield\n"
        "    raise RuntimeError('rollback went wrong')\n"
        "@pytest.mark.routing\n"
        "def test_t(broken, record):\n"
        "    record.set('y', 2)\n"
    )
    result = suite.runpytest("--reports-dir", "out", "test_t.py")
    result.assert_outcomes(passed=1, errors=1)
    (run_dir,) = [p for p in (suite.path / "out").iterdir() if p.is_dir()]  # + history.jsonl
    rec = json.loads((run_dir / "test_t.test_t.json").read_text())
    assert rec["outcome"] == "error"
    assert rec["phases"]["teardown"] == "failed"
    assert "rollback went wrong" in rec["failure"]


def test_alpha_split_over_scenarios_only(pytester: pytest.Pytester) -> None:
    # Scenarios by path: the ini option, not a folder that happens to be called so.
    pytester.makeini("[pytest]\nmeshchaos_scenario_paths = scenarios\n")
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "test_a.py").write_text(
        "import pytest\n"
        "from meshchaos.stats import current_alpha\n"
        "@pytest.mark.parametrize('i', range(4))\n"
        "def test_a(i, request):\n"
        "    assert request.node.get_closest_marker('scenario')\n"
        "    assert current_alpha() == pytest.approx(0.02 / 4)\n"
    )
    (pytester.path / "test_other.py").write_text(
        "from meshchaos.stats import current_alpha\n"
        "def test_b():\n"
        "    assert current_alpha() == 0.02\n"
    )
    pytester.runpytest("--alpha", "0.02").assert_outcomes(passed=5)
    # -k deselection shrinks the split: only what runs shares the budget.
    pytester.runpytest("--alpha", "0.02", "-k", "test_a and 0").assert_outcomes(failed=1)


@pytest.mark.parametrize(
    ("backend", "tool", "how"),
    [("kind", "Docker engine", "docs.docker.com"), ("cluster", "kubectl", "kubectl")],
)
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_kube_backend_without_its_tools_ends_the_run_at_once_with_one_message(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    workers: list[str],
    backend: str,
    tool: str,
    how: str,
) -> None:
    # No conftest: the `mesh` fixture and the check come from the installed plugin.
    empty = pytester.path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no docker, kind or kubectl
    pytester.makepyfile(test_s="import pytest\n@pytest.mark.routing\ndef test_s(mesh):\n    pass\n")
    result = pytester.runpytest_subprocess("--backend", backend, *workers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert err.count(f"ERROR: meshchaos: --backend {backend} cannot start") == 1
    assert tool in err
    assert how in err
    assert "Traceback" not in err + result.stdout.str()
    assert "test_s" not in result.stdout.str()  # nothing ran: not one error per test
