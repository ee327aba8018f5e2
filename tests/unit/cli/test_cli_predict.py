"""``meshchaos predict`` through the CLI dispatcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshchaos.cli import main

POLICY = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - fault: {abort: {httpStatus: 503, percentage: {value: 25}}}
    route: [{destination: {host: httpbin}}]
"""


def test_predict_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "vs.yaml"
    f.write_text(POLICY)
    code = main(
        ["predict", "-f", str(f), "--from", "client", "--path", "http://httpbin:8000/get", "--json"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    shares = {o["outcome"]: o["probability"] for o in out["outcomes"]}
    assert shares == {"status:200": pytest.approx(0.75), "status:503": pytest.approx(0.25)}
    assert out["counters"] == {"fault.aborts_injected": pytest.approx(0.25)}


def test_predict_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--user", "jason"]) == 0
    out = capsys.readouterr().out
    assert "reviews-v1" in out
    assert "reasoning:" in out
