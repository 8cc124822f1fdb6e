"""The README's two set-up commands are the ones CI runs."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```bash\n")[1:3]
    return [b.split("```")[0].strip() for b in blocks]


PACKAGES = "dataset-fashion-mnist openclipart-png gnome-cards-data fonts-noto-color-emoji unicode-data"


def test_readme_opens_with_run_and_test_commands():
    run, test = readme_commands()
    assert "python3 -m venv .venv" in run and "launch/main.py" in run
    assert "python3 -m venv .venv" in test and "pytest" in test
    for command in (run, test):  # the image data installs from Debian by package name, with the project
        assert f"apt-get install -y -qq {PACKAGES}" in command


def test_ci_runs_the_readme_test_command_verbatim():
    _, test = readme_commands()
    assert test in (ROOT / ".ci" / "run").read_text()


def test_the_main_job_composes_every_stage_as_typed(tmp_path):
    """``launch/main.py dry_run=true`` composes the four stages it would run (the README's run command)."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "launch" / "main.py"), "dry_run=true", f"hydra.run.dir={tmp_path}"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for stage in ("search", "zoo", "collect", "stream"):
        assert f"# --- {stage} ---" in out.stdout
    assert f"zoo_root: {tmp_path.resolve() / 'zoo'}" in out.stdout  # the stages are wired through one folder
