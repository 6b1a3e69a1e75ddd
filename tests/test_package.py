"""What a user installs: the license, the package page, the dependencies and the cli extra."""

import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_the_license_is_the_full_apache_2_text():
    text = (ROOT / "LICENSE").read_text()
    for words in (
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE",
        "9. Accepting Warranty or Additional Liability",
        "END OF TERMS AND CONDITIONS",
    ):
        assert words in text
    assert len(text.split()) > 1500  # the whole license, not a notice


def test_the_package_page_has_no_relative_links_and_its_code_runs(capsys):
    page = (ROOT / "README-pypi.md").read_text()
    targets = re.findall(r"\]\(([^)]*)\)", page) + re.findall(r"src=[\"']([^\"']*)", page)
    assert all(t.startswith("https://") for t in targets), targets  # they break on the index
    readme = (ROOT / "README.md").read_text()
    blocks = BLOCK.findall(page)
    assert blocks and all(block in readme for block in blocks)  # one text, no drift
    exec(compile(blocks[0], "README-pypi quickstart", "exec"), {})


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("gumbel_sinkhorn-*.whl"))


def test_the_wheel_carries_the_license_the_page_and_the_cli_extra(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(meta_name).decode())
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "Apache-2.0 (the `LICENSE` file" in metadata.get_payload()  # README-pypi.md
    requires = metadata.get_all("Requires-Dist")
    name = re.compile(r"[A-Za-z0-9_.-]+")
    core = {name.match(r).group(0) for r in requires if "extra ==" not in r}
    cli = {name.match(r).group(0) for r in requires if 'extra == "cli"' in r}
    assert core == {"torch", "numpy", "scipy", "lapx"}
    assert cli == {"tqdm", "pillow", "matplotlib"}
    assert any(n.endswith("weights/mnist-3x3.pt") for n in names)
    # the native kernels' source, compiled at first use
    for source in ("sinkhorn.c", "sinkhorn_impl.h"):
        assert f"gumbel_sinkhorn/ops/_native/{source}" in names


WITHOUT_EXTRA = "import sys; sys.modules.update(tqdm=None, PIL=None, matplotlib=None); "


def python(code):
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA + code], capture_output=True, text=True, cwd=ROOT
    )


def test_the_operators_work_without_the_cli_extra_and_the_rest_says_what_is_missing():
    ops = python(
        "import torch, gumbel_sinkhorn as gs; "
        "print(gs.place(torch.arange(3), gs.matching(torch.eye(3))).tolist())"
    )
    assert ops.returncode == 0 and ops.stdout.strip() == "[0, 1, 2]", ops.stderr
    train = python("import gumbel_sinkhorn.train")
    assert "needs tqdm, which is not installed: pip install 'gumbel-sinkhorn[cli]'" in train.stderr
    command = python("from gumbel_sinkhorn.cli import main; sys.exit(main(['--help']))")
    assert command.returncode == 1 and command.stdout == ""
    assert command.stderr.strip().splitlines() == [
        "gumbel-sinkhorn: error: the gumbel-sinkhorn command line needs tqdm, which is not "
        "installed: pip install 'gumbel-sinkhorn[cli]' (or pip install tqdm)"
    ]
