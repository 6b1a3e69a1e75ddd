"""`make docs` builds the site strictly: a broken link or cross-reference fails, and the API
reference has a page for every public module, with the command line's help."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")

ROOT = Path(__file__).resolve().parents[1]


def build(site: Path, config: Path = ROOT / "mkdocs.yml") -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
         "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    result = build(site)
    assert result.returncode == 0, result.stderr[-4000:]
    return site


def test_pages(site):
    for page in ("index.html", "examples.html", "api/index.html", "api/cli.html",
                 "ARCHITECTURE.html", "RESULTS.html"):  # fmt: skip
        assert (site / page).is_file(), page
    for notebook in (ROOT / "examples").glob("*.ipynb"):
        assert (site / "examples" / notebook.name).is_file()


def test_api_reference_has_every_public_module_and_the_operators(site):
    modules = {p.name for p in (site / "api").glob("gumbel_sinkhorn*.html")}
    assert "gumbel_sinkhorn.ops.sinkhorn.html" in modules
    assert "gumbel_sinkhorn.distributions.gumbel_sinkhorn.html" in modules
    assert not [m for m in modules if "._" in m or "commands" in m]
    html = (site / "api" / "gumbel_sinkhorn.ops.sinkhorn.html").read_text(encoding="utf-8")
    assert 'id="gumbel_sinkhorn.ops.sinkhorn.sinkhorn"' in html
    assert 'id="gumbel_sinkhorn.ops.sinkhorn.log_sinkhorn"' in html


def test_cli_page_has_every_subcommand_help(site):
    html = (site / "api" / "cli.html").read_text(encoding="utf-8")
    for command in ("gumbel-sinkhorn jigsaw train", "gumbel-sinkhorn sorting evaluate", "--resume"):
        assert command in html


def test_a_broken_link_fails_the_build(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("[a page that is not there](MISSING.md)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: t\nstrict: true\ndocs_dir: docs\n")
    result = build(tmp_path / "site", config)
    assert result.returncode != 0 and "MISSING.md" in result.stderr
