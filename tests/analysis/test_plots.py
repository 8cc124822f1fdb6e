import subprocess
import sys

from nasoa.analysis.zoo_plot import zoo_front, zoo_points
from nasoa.search.archive import ParetoArchive, Record

from ..helpers import ROOT, make_tiny_zoo


def test_zoo_plot_from_the_manifest_alone_shows_every_entry(tmp_path):
    make_tiny_zoo(tmp_path)
    out = subprocess.run(
        [sys.executable, str(ROOT / "analysis" / "plot_zoo.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "zoo.png").stat().st_size > 10_000
    from nasoa.zoo import read_manifest

    points = zoo_points(read_manifest(tmp_path))
    assert len(points) == 2
    assert zoo_front(points)


def test_search_plot_script(tmp_path):
    records = [
        Record(f"a{i}", f"e{i}", "block" if i < 3 else "macro", 0, "ok", 0.5 + i / 20, 10 + 5 * i) for i in range(6)
    ]
    ParetoArchive().add(*records, Record("f", "x", "block", 0, "failed", error="boom")).save(tmp_path)
    out = subprocess.run(
        [sys.executable, str(ROOT / "analysis" / "plot_search.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
