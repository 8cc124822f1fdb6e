"""Plots and a Markdown report from a benchmark run's JSON results (nothing is recomputed here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPORT_FILE = "report.md"


def _load(run_dir: Path, name: str) -> dict[str, Any] | None:
    path = run_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _log_x(ax: Any) -> None:
    """A log x axis labelled with plain numbers at the major ticks only."""
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())


def _save(fig: Any, ax: Any, path: Path) -> Path:
    """Grid, legend, tight layout; write the PNG and free the figure."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy_vs_budget(rq: dict[str, Any], path: Path) -> Path:
    """Mean test top-1 over the stream against the budget multiple, one line per method with its 95% band."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, curve in rq["summary"]["curves"].items():
        xs = [float(x) for x in curve]
        mean = [curve[x]["mean"] for x in curve]
        style = {"oracle": ":", "nasoa": "-", "nasoa_noprobe": "-"}.get(method, "--")
        (line,) = ax.plot(xs, mean, style, marker="o", label=method, linewidth=2.2 if method == "nasoa" else 1.2)
        ax.fill_between(
            xs, [curve[x]["lo"] for x in curve], [curve[x]["hi"] for x in curve], alpha=0.12, color=line.get_color()
        )
    _log_x(ax)
    multiples = rq["multiples"]
    ax.set_xticks(multiples)
    unit = rq.get("budget_unit", "x")
    ax.set_xticklabels([f"{m:g}{unit}" for m in multiples])
    ax.set_xlabel(
        "time budget (s)" if unit == "s" else "time budget (multiples of each task's cheapest full fine-tune)"
    )
    ax.set_ylabel(f"mean test top-1, {len(rq['tasks'])} new tasks x {len(rq['seeds'])} seeds")
    ax.set_title("Regime quality under a time budget (95% bands)")
    return _save(fig, ax, path)


def plot_zoo_efficiency(ze: dict[str, Any], path: Path) -> Path:
    """Source top-1 against measured training step time: the ET-NAS front and the reference models."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    models = ze["models"]
    front = set(ze["front"])
    zoo = sorted((m for m in models if m["kind"] == "etnas"), key=lambda m: m["train_step_ms"])
    ax.scatter([m["train_step_ms"] for m in zoo], [m["top1"] for m in zoo], c="tab:blue", label="zoo (ET-NAS)")
    on_front = [m for m in zoo if m["name"] in front]
    ax.plot([m["train_step_ms"] for m in on_front], [m["top1"] for m in on_front], "-", c="tab:blue", alpha=0.6)
    refs = [m for m in models if m["kind"] != "etnas"]
    ax.scatter(
        [m["train_step_ms"] for m in refs], [m["top1"] for m in refs], c="tab:red", marker="s", label="reference models"
    )
    for m in refs:
        ax.annotate(m["name"], (m["train_step_ms"], m["top1"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for m in zoo:
        ax.annotate(m["name"], (m["train_step_ms"], m["top1"]), fontsize=6, xytext=(2, -8), textcoords="offset points")
    _log_x(ax)
    ax.set_xlabel(f"training step (ms, batch {ze['batch_size']}, {ze['resolution']}px, {ze['device']})")
    ax.set_ylabel(f"top-1 on the source task ({ze['source']})")
    ax.set_title("Training efficiency of the zoo")
    return _save(fig, ax, path)


def _f(x: Any, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def _ci(d: dict[str, Any] | None) -> str:
    return "—" if not d or d.get("mean") is None else f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"


def _budget_words(rq: dict[str, Any]) -> str:
    return "seconds" if rq.get("budget_unit") == "s" else "multiples of each task's cheapest full fine-tune"


def _regime_section(rq: dict[str, Any]) -> list[str]:
    summary = rq["summary"]
    lines = [
        "## Regime quality",
        "",
        f"{len(rq['tasks'])} new tasks x budgets {', '.join(f'{m:g}' for m in rq['multiples'])} "
        f"({_budget_words(rq)}) x "
        f"{len(rq['seeds'])} seeds; chosen on validation, scored on test. Predictor "
        f"`{rq['predictor']['name']}` fitted on {rq['past_runs']} past runs; {rq['fine_tunes_run']} fine-tunes run "
        f"({rq['fine_tunes_reused']} reused); {rq['seconds']:.0f} s.",
        "",
        "![accuracy vs budget](accuracy_vs_budget.png)",
        "",
        "| method | mean test top-1 | mean val top-1 | compute (s, mean) | fine-tunes | "
        + " | ".join(f"@ {m:g}{rq.get('budget_unit', 'x')}" for m in rq["multiples"])
        + " |",
        "|---|---|---|---|---|" + "---|" * len(rq["multiples"]),
    ]
    for method, s in summary["methods"].items():
        lines.append(
            f"| {method} | {_f(s['mean_test'])} | {_f(s['mean_val'])} | {_f(s['mean_compute_s'], '.1f')} | "
            f"{_f(s['mean_fine_tunes'], '.1f')} | "
            + " | ".join(_f(s["by_budget"].get(f"{m:g}")) for m in rq["multiples"])
            + " |"
        )
    lines += [
        "",
        "Paired differences in test top-1 (per task and seed, averaged over budgets; 95% bootstrap over "
        "tasks and seeds):",
        "",
    ]
    lines += [f"- {name}: {_ci(d)}" for name, d in summary["paired"].items()]
    lines += ["", "Targets:", ""]
    for name, t in summary["targets"].items():
        detail = ", ".join(f"{k} {_f(v, '.4g') if isinstance(v, float) else v}" for k, v in t.items() if k != "met")
        lines.append(f"- {name}: **{'met' if t['met'] else 'NOT met'}** ({detail})")
    return lines + [""] + _domain_table(summary)


def _domain_table(summary: dict[str, Any]) -> list[str]:
    methods = summary["methods"]
    domains = sorted({d for s in methods.values() for d in s["by_domain"]})
    lines = ["Per domain (mean test top-1):", "", "| method | " + " | ".join(domains) + " |"]
    lines.append("|---|" + "---|" * len(domains))
    for method, s in methods.items():
        lines.append(f"| {method} | " + " | ".join(_f(s["by_domain"].get(d)) for d in domains) + " |")
    return lines


def write_report(run_dir: str | Path) -> Path:
    """Write the plots and ``report.md`` for whatever results ``run_dir`` holds; returns the report's path."""
    run_dir = Path(run_dir)
    lines = ["# nasoa benchmark report", ""]
    index = _load(run_dir, "benchmark")
    rq = _load(run_dir, "regime_quality")
    if rq:
        plot_accuracy_vs_budget(rq, run_dir / "accuracy_vs_budget.png")
        lines += _regime_section(rq) + [""]
    ze = _load(run_dir, "zoo_efficiency")
    if ze:
        plot_zoo_efficiency(ze, run_dir / "zoo_efficiency.png")
        lines += [
            "## Zoo efficiency",
            "",
            f"Step times measured in this run on {ze['device']} (batch {ze['batch_size']}, {ze['resolution']} px, "
            f"{ze['threads']} thread(s)); top-1 on the source task from the zoo build; matched within "
            f"{ze['tolerance']:.3f}.",
            "",
            "![zoo efficiency](zoo_efficiency.png)",
            "",
            "| reference | top-1 | step (ms) | fastest zoo model at least as accurate | top-1 | step (ms) | speed-up |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in ze["matched"]:
            lines.append(
                f"| {m['reference']} | {_f(m['reference_top1'])} | {_f(m['reference_step_ms'], '.1f')} | "
                f"{m['zoo_model'] or 'none'} | {_f(m['zoo_top1'])} | {_f(m['zoo_step_ms'], '.1f')} | "
                f"{_f(m['speedup'], '.2f')}{'x' if m['speedup'] else ''} |"
            )
        lines.append("")
    se = _load(run_dir, "search_efficiency")
    if se:
        lines += [
            "## Search efficiency",
            "",
            "| workers | candidates | wall (s) | start-up (s) | candidates/h | candidates/h after start-up | "
            "worker time evaluating |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in se["runs"]:
            lines.append(
                f"| {r['workers']} | {r['candidates']} | {r['seconds']:.0f} | {r['startup_s']:.0f} | "
                f"{r['candidates_per_hour']:.0f} | {r['candidates_per_hour_after_startup']:.0f} | "
                f"{100 * r['worker_efficiency']:.1f}% |"
            )
        for w, s in se["speedup_vs_1_worker"].items():
            lines.append(
                f"\nSpeed-up 1 -> {w} workers: {s['total']:.2f}x overall, {s['after_startup']:.2f}x after start-up."
            )
        lines.append("")
    sv = _load(run_dir, "serving")
    if sv:
        e = sv["endpoints"]
        lines += [
            "## Serving",
            "",
            "| endpoint | p50 (ms) | p99 (ms) | requests/s | errors |",
            "|---|---|---|---|---|",
        ]
        for name in ("echo", "regime"):
            s = e[name]
            lines.append(
                f"| {'/v1/regime' if name == 'regime' else 'Serve echo'} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                f"{s['throughput_rps']:.0f} | {s['errors']} |"
            )
        lines += [
            "",
            f"p50(/v1/regime) / p50(echo) = {sv['ratio_p50']:.2f} over {sv['num_candidates']} candidate regimes.",
            "",
        ]
    if index:
        lines += ["## Run", "", f"Total {index.get('seconds', 0):.0f} s; zoo `{index.get('zoo_root')}`."]
        for name, v in index.items():
            if isinstance(v, dict) and "error" in v:
                lines.append(f"- **{name} failed**: {v['error']}")
    path = run_dir / REPORT_FILE
    path.write_text("\n".join(lines) + "\n")
    return path
