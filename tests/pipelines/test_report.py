"""``aligncraft inspect PATH --html``: rich tables in the terminal, one self-contained HTML file,
and that file rendered by headless Chromium (the screenshot is kept as a test artifact)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.cli.main import cli
from pipelines.report import html_report
from tests.pipelines.test_inspect import demo_runs

KEPT_RGB = (0x4C, 0x9A, 0x6A)  # pipelines.plots.KEPT_COLOR: the funnel's kept bars
HIST_RGB = (0x3D, 0x5A, 0x80)  # histogram bars
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    return demo_runs(tmp_path_factory, shared_data)


def test_cli_prints_rich_tables_and_writes_the_html(runner, runs, tmp_path):
    report = tmp_path / "report.html"
    res = runner.invoke(cli, ["inspect", str(runs["sft"]), "--html", str(report)])
    assert res.exit_code == 0, res.output
    out = res.output
    for s in ("49 rows", "Rows per stage", "Rejected rows by stage and reason", "duplicate_of", "too_long", "response_length", "Near-duplicate clusters", "┃"):
        assert s in out, s
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count('src="data:image/png;base64,') >= 3
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing outside the file
    for section in ("funnel", "rejected", "columns", "scores", "duplicates", "sample", "plots"):
        assert f'<section id="{section}">' in page, section
    pairs = html_report(runs["pairs"])
    assert '<section id="pairs">' in pairs and "Chosen and rejected" in pairs


def test_cli_inspects_a_plain_file(runner, runs):
    res = runner.invoke(cli, ["inspect", str(runs["pairs"] / "data" / "train-00000-of-00001.parquet"), "--rows", "2"])
    assert res.exit_code == 0, res.output
    assert "12 rows" in res.output and "Chosen and rejected" in res.output and "Rows per stage" not in res.output


def test_report_sections_follow_the_columns():
    import polars as pl

    from pipelines.inspect import Inspection

    step = {"round": 1, "instruction": "Write a poem.", "action": None, "score_strong": 8.0, "score_target": 8.0, "gap": 0.0, "outcome": "no_gap_after_depth"}
    rows = pl.DataFrame({
        "id": ["a", "b"], "prompt": ["Hi?", "Sum 2+2."], "chosen": ["Hello!", "4"], "rejected": ["Go away.", "5"],
        "completions": [[{"model": "m1"}, {"model": "m2"}]] * 2, "rating_honesty": [[5.0, 2.0], [4.0, 1.0]],
        "instruction_id_list": [["punctuation:no_comma"]] * 2, "follow_instruction_list": [[True], [False]],
    })
    rejected = pl.DataFrame({"id": ["c"], "instruction": ["Write a poem."], "lineage": [[step]], "reject_reason": ["no_gap_after_depth"], "reject_stage": ["r1_decide"]})
    stages = [{"name": "r1_decide", "type": "codeclm_decide", "rows_in": 3, "kept": 2, "rejected": 1, "reasons": {"no_gap_after_depth": 1}}]
    page = html_report(Inspection(Path("."), "output", rows, rejected, stages, {"source_rows": 3}))
    for section in ("funnel", "rejected", "constraints", "ratings", "pairs", "lineage", "plots"):
        assert f'<section id="{section}">' in page, section
    assert "Lineage of a rejected CodecLM row" in page and "no_gap_after_depth" in page
    assert 'id="plot-judge_ratings"' in page and 'id="plot-constraint_pass_rates"' in page


# -- Chromium ------------------------------------------------------------------------
def find_or_install_chromium() -> str:
    """Debian's chromium: found, or installed with apt-get where this user may; else skip."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe:
        return exe
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get): run `apt-get install -y chromium`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quick = ["-o", "Acquire::http::Timeout=20", "-o", "Acquire::Retries=0"]  # offline: fail fast, then skip
    install = ["apt-get", *quick, "install", "-y", "--no-install-recommends", "chromium"]
    r = subprocess.run(install, env=env, check=False, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:  # stale package lists: refresh once
        subprocess.run(["apt-get", *quick, "update"], env=env, check=False, capture_output=True, text=True, timeout=180)
        r = subprocess.run(install, env=env, check=False, capture_output=True, text=True, timeout=600)
    exe = shutil.which("chromium")
    if r.returncode != 0 or not exe:
        last = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"`apt-get install -y chromium` failed (offline?): {last[0]}")
    return exe


def chromium(exe: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], check=False, capture_output=True, text=True, timeout=120)


def colour_pixels(png, rgb: tuple[int, int, int], tol: int = 6) -> int:
    from PIL import Image

    img = Image.open(png).convert("RGB")
    return sum(n for n, c in img.getcolors(maxcolors=1 << 24) if all(abs(a - b) <= tol for a, b in zip(c, rgb)))


def test_chromium_renders_the_report(runs, tmp_path_factory, capsys):
    exe = find_or_install_chromium()
    art = tmp_path_factory.mktemp("report_screenshot")
    page = art / "report.html"
    page.write_text(html_report(runs["sft"]), encoding="utf-8")
    # 1. the DOM after load: every image decoded (naturalWidth > 0), funnel included
    probe = art / "probe.html"
    probe.write_text(page.read_text().replace("</body>", "<script>window.onload = () => { const imgs = [...document.images]; document.title = 'images:' + imgs.length + ':' + imgs.filter(i => i.complete && i.naturalWidth > 0).length + ':' + (document.getElementById('plot-funnel') || {}).naturalWidth; };</script></body>"))
    dom = chromium(exe, art, "--dump-dom", "--virtual-time-budget=5000", probe.as_uri())
    m = re.search(r"<title>images:(\d+):(\d+):(\d+)</title>", dom.stdout)
    assert m, dom.stderr[-2000:]
    total, decoded, funnel_width = map(int, m.groups())
    assert total >= 3 and decoded == total and funnel_width > 200
    assert 'id="funnel"' in dom.stdout and "Rows per stage" in dom.stdout
    # 2. the screenshot (the brief's 1280x2000 window) shows the funnel's bars and, below
    #    them, a histogram: pixels of their colours
    shot = art / "report.png"
    r = chromium(exe, art, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000, r.stderr[-2000:]
    with capsys.disabled():
        print(f"\n[report screenshot] {shot}")
    keep = os.environ.get("ALIGNCRAFT_TEST_ARTIFACTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, os.path.join(keep, "report.png"))
    assert colour_pixels(shot, KEPT_RGB) > 5_000
    assert colour_pixels(shot, HIST_RGB) > 2_000
