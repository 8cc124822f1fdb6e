"""The layout's rules, checked on the source: where Ray and torch may be imported, no cycles, short functions.

- Ray only in ``nasoa.cluster`` (the adapters) and ``nasoa.jobs`` (the wiring); ``space`` and ``search`` never.
- ``nasoa.space`` never imports torch.
- No import cycles between the packages of ``nasoa``.
- A function-local import says why it is there (``# lazy: <reason>``): they exist only to keep torch or Ray off a
  light import path.
- Functions are short: median at most 15 lines, no job function over 60.
"""

import ast
import statistics
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nasoa"
RAY_ALLOWED = {"cluster", "jobs"}


def modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(PACKAGE.parent)): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def package_of(path: str) -> str:
    parts = Path(path).parts  # ("nasoa", "<package>", ...)
    return parts[1] if len(parts) > 2 else Path(parts[1]).stem


def imported(tree: ast.Module) -> list[tuple[ast.stmt, str]]:
    """Every import statement in a module (module level and inside functions) with the module it names."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node, node.module))
    return out


def test_ray_is_imported_only_by_the_adapters_and_the_jobs():
    offenders = [
        f"{path}:{node.lineno} imports {name}"
        for path, tree in modules().items()
        for node, name in imported(tree)
        if name.split(".")[0] == "ray" and package_of(path) not in RAY_ALLOWED
    ]
    assert not offenders, "\n".join(offenders)


def test_space_imports_no_torch():
    offenders = [
        f"{path}:{node.lineno} imports {name}"
        for path, tree in modules().items()
        for node, name in imported(tree)
        if package_of(path) == "space" and name.split(".")[0] in ("torch", "torchvision", "ray")
    ]
    assert not offenders, "\n".join(offenders)


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path, tree in modules().items():
        here = package_of(path)
        for _, name in imported(tree):
            parts = name.split(".")
            if parts[0] == "nasoa" and len(parts) > 1 and parts[1] != here:
                graph.setdefault(here, set()).add(parts[1])
    return graph


def test_no_import_cycles_between_packages():
    graph = package_graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(p for p in graph if reaches(p, p, {p}))
    assert not cycles, {p: sorted(graph[p]) for p in cycles}


def test_the_plain_packages_do_not_depend_on_the_ray_layer():
    graph = package_graph()
    plain = {"space", "models", "data", "train", "search", "zoo", "online", "common", "bench", "analysis"}
    leaks = {p: sorted(graph.get(p, set()) & RAY_ALLOWED) for p in plain if graph.get(p, set()) & RAY_ALLOWED}
    assert not leaks, leaks


def test_every_function_local_import_says_why():
    silent = []
    for path, tree in modules().items():
        lines = (PACKAGE.parent / path).read_text().splitlines()
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom) and "# lazy:" not in lines[node.lineno - 1]:
                    silent.append(f"{path}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not silent, "function-local imports without a '# lazy: <reason>' comment:\n" + "\n".join(silent)


def function_lengths() -> list[tuple[str, str, int]]:
    return [
        (path, fn.name, fn.end_lineno - fn.lineno + 1)
        for path, tree in modules().items()
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_functions_are_short():
    lengths = function_lengths()
    assert statistics.median(n for _, _, n in lengths) <= 15
    long_jobs = [(p, f, n) for p, f, n in lengths if package_of(p) == "jobs" and n > 60]
    assert not long_jobs, long_jobs


@pytest.mark.parametrize("word", ["DESIGN.md", "STACK-NOTES.md", "STYLE.md"])
def test_the_code_cites_no_document_outside_the_repository(word):
    root = PACKAGE.parent
    hits = [
        str(p.relative_to(root))
        for pattern in ("nasoa/**/*.py", "conf/**/*.yaml", "launch/*.py", "analysis/*.py", "deploy/*.yaml")
        for p in root.glob(pattern)
        if word in p.read_text()
    ]
    assert not hits, hits
