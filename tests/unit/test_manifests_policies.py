"""Policy names: the lookup order of find_policy, and load_policies' all-or-nothing report."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshchaos.errors import ConfigInvalid
from meshchaos.manifests import PolicyNotFound, data_dir, find_policy, load_policies

SAMPLE = "fault-ratings-abort-50pct-500"


def test_a_name_finds_the_packaged_sample_with_or_without_yaml() -> None:
    expected = data_dir() / "istio" / f"{SAMPLE}.yaml"
    assert find_policy(SAMPLE) == expected
    assert find_policy(f"{SAMPLE}.yaml") == expected


def test_policy_dirs_come_before_the_samples_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / f"{SAMPLE}.yaml").write_text("")
    assert find_policy(SAMPLE, [first, second]) == second / f"{SAMPLE}.yaml"
    (first / f"{SAMPLE}.yaml").write_text("")
    assert find_policy(SAMPLE, [first, second]) == first / f"{SAMPLE}.yaml"


def test_missing_paths_and_directories_are_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyNotFound, match=rf"^{tmp_path}/x.yaml: no such file$"):
        find_policy(tmp_path / "x.yaml")
    with pytest.raises(PolicyNotFound, match="is a directory, not a policy file"):
        find_policy(tmp_path)


def test_load_policies_reports_every_problem_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: VirtualService\napiVersion: networking.istio.io/v1\n")
    with pytest.raises(ConfigInvalid) as info:
        load_policies(["nope", bad, SAMPLE])
    problems = info.value.problems
    assert problems[0].startswith("no policy file 'nope': not a path")
    assert len(problems) >= 2
    assert all(str(bad) in p for p in problems[1:])


def test_load_policies_parses_names_and_paths(tmp_path: Path) -> None:
    [vs] = load_policies([SAMPLE])
    assert (vs.kind, vs.metadata.name) == ("VirtualService", "ratings")
    assert vs.source == str(data_dir() / "istio" / f"{SAMPLE}.yaml")
