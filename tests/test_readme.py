"""The README's two set-up commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```bash\n")[1:3]
    return [b.split("```")[0].strip() for b in blocks]


def test_readme_opens_with_run_and_test_commands():
    run, test = readme_commands()
    assert run.startswith("python3 -m venv .venv") and "launch/main.py" in run
    assert test.startswith("python3 -m venv .venv") and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim():
    _, test = readme_commands()
    assert test in (ROOT / ".ci" / "run").read_text()


def test_main_entry_point_exists():
    assert (ROOT / "launch" / "main.py").exists()
