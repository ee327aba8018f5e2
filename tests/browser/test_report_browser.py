"""The report in a real browser: headless Chromium, network off, screenshot and DOM.

Needs Debian's Chromium (``apt-get install -y chromium``). Without it the test is
skipped with the install line, so the README's quick start works on a fresh machine;
CI sets ``MESHCHAOS_REQUIRE_BROWSER=1`` (``.ci/run`` installs Chromium), and there a
missing browser fails the test instead. The run is made with the record writer from synthetic loads
(``tests/unit/report/report_fakes.py``: real LoadResults and checks), so it costs no
mesh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "report"))
from report_fakes import Spec, write_run

from meshchaos.report.html import render_report

INSTALL = "apt-get install -y chromium"
# No network: every host resolves to nothing and the proxy is a closed port.
OFFLINE = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def chromium() -> str:
    for name in (os.environ.get("MESHCHAOS_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    why = (
        f"headless Chromium is needed for the browser test and was not found: install it "
        f"with `{INSTALL}` (Debian/Ubuntu), or point MESHCHAOS_CHROMIUM at a Chromium binary"
    )
    if os.environ.get("MESHCHAOS_REQUIRE_BROWSER") == "1":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"  # a fresh profile every run
    return subprocess.run(
        [chromium(), *OFFLINE, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
    )


@pytest.fixture
def report(tmp_path: Path) -> Path:
    specs = [
        Spec("calm", error_share=0.05, v2_share=0.4),
        Spec("broken", error_share=0.30, outcome="failed"),
        Spec("slow", median=0.2),
    ]
    return render_report(write_run(tmp_path / "runs" / "r1", specs, seed=7))


def test_the_report_renders_offline_with_its_plots_and_graph(report: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    url = report.as_uri()
    run_chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={png}", url)
    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 1600)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) > 50, "the screenshot is (nearly) blank"
    dom = run_chromium(tmp_path, "--dump-dom", url).stdout
    assert dom.count('class="graph"') == 3
    assert dom.count('class="plot-ecdf"') == 3
    assert dom.count('class="plot-shares"') == 3
    assert dom.count('class="plot-timeline"') == 3
    assert dom.count("<svg") >= 12
    # The script ran: it filled in the count of shown rows.
    assert '<span id="shown">3</span>' in dom
