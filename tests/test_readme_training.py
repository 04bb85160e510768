"""Every command block of the README's training section either runs here as written or is marked as an example.

The blocks run in order, in a clean environment (no MLFLOW_* variables, a temporary SSE_SCREEN_HOME) from an empty
working folder, with ``.venv/bin/`` standing for this interpreter's folder. Blocks whose first line starts with
``# example`` need prior steps or take long: they are only checked for shell syntax.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Training and tracking (data scientists)"


def section_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"```bash\n(.*?)```", text[start:end], flags=re.DOTALL)


def run_block(block: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = block.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=900
    )


def test_readme_training_blocks_run_or_are_marked_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = section_blocks()
    runnable = [b for b in blocks if not b.startswith("# example")]
    examples = [b for b in blocks if b.startswith("# example")]
    assert len(runnable) == 2 and len(examples) == 2, blocks
    for block in examples:
        check = subprocess.run(["bash", "-n", "-c", block], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr

    for name in list(os.environ):
        if name.startswith("MLFLOW_") or (name.startswith("SSE_SCREEN_") and name.endswith("_MODEL_URI")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    smoke, promote = runnable

    # The promotion snippet checks before it sets: on an empty store it stops with one clear line.
    monkeypatch.setenv("SSE_SCREEN_HOME", str(tmp_path / "empty-home"))
    refused = run_block(promote, work)
    assert refused.returncode == 1
    assert "sse-screen-band-gap has no version 1 (it has: none); train first" in refused.stderr
    assert "Traceback" not in refused.stderr and not (work / "out.csv").exists()

    monkeypatch.setenv("SSE_SCREEN_HOME", str(tmp_path / "home"))
    said = []
    for block in (smoke, promote):
        run = run_block(block, work)
        assert run.returncode == 0, run.stderr[-3000:]
        assert (work / "out.csv").is_file()
        (work / "out.csv").unlink()
        said.append(run.stdout)
    assert "models:/sse-screen-band-gap/1 -> @candidate (a --quick/--limit smoke run is never champion)" in said[0]
    assert "models:/sse-screen-band-gap@champion -> version 1" in said[1]
    assert sorted(p.name for p in work.iterdir()) == ["examples"]  # no ./mlflow.db, no ./mlruns
