"""The report's three PNGs: accuracy vs latency (Pareto), latency breakdown, size per board."""

from __future__ import annotations

from pathlib import Path

from vitfleet.bench.contenders import Contender

COLORS = {"teacher": "#444444", "compact": "#d62728", "devit": "#1f77b4", "edvit": "#2ca02c"}


def _color(c: Contender) -> str:
    return COLORS.get(c.method or c.kind, "#888888")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto(contenders: list[Contender], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    pts = sorted(((c.latency_ms, 100 * (c.top1 or 0), c) for c in contenders), key=lambda t: (t[0], -t[1]))
    front, best = [], -1.0
    for lat, acc, _ in pts:
        if acc > best:
            front.append((lat, acc))
            best = acc
    ax.plot([p[0] for p in front], [p[1] for p in front], "--", color="#999999", lw=1, label="Pareto front")
    for lat, acc, c in pts:
        marker = "s" if c.precision == "int8" else "o"
        ax.scatter([lat], [acc], color=_color(c), marker=marker, s=50, zorder=3)
        ax.annotate(c.name, (lat, acc), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("latency per frame, ms (log; fleets: computed critical path)")
    ax.set_ylabel("top-1 %")
    ax.set_title(title + "\n(circle fp32, square int8)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def breakdown(contenders: list[Contender], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(7.0, 0.6 * len(contenders) + 2), 4.8))
    names = [c.name for c in contenders]
    part = [c.slowest_part_ms for c in contenders]
    transport = [c.transport_ms for c in contenders]
    fusion = [c.fusion_median_ms for c in contenders]
    x = range(len(contenders))
    ax.bar(x, part, color="#1f77b4", label="slowest part / model (isolated median)")
    ax.bar(x, transport, bottom=part, color="#ff7f0e", label="transport (measured, K=2 run)")
    ax.bar(x, fusion, bottom=[a + b for a, b in zip(part, transport)], color="#2ca02c", label="fusion")
    measured = [(i, c.measured_e2e_p50_ms) for i, c in enumerate(contenders) if c.measured_e2e_p50_ms]
    if measured:
        ax.scatter(
            [m[0] for m in measured],
            [m[1] for m in measured],
            marker="_",
            s=300,
            color="black",
            zorder=3,
            label="measured end-to-end p50 (real fleet)",
        )
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("ms per frame")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sizes(contenders: list[Contender], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(7.0, 0.6 * len(contenders) + 2), 4.8))
    x = list(range(len(contenders)))
    w = 0.4
    ax.bar(
        [i - w / 2 for i in x], [c.largest_bytes / 1e6 for c in contenders], w, color="#1f77b4", label="largest board"
    )
    ax.bar([i + w / 2 for i in x], [c.total_bytes / 1e6 for c in contenders], w, color="#aec7e8", label="all boards")
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([c.name for c in contenders], rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("engine MB (log)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def all_plots(contenders: list[Contender], out: Path, tag: str) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    return {
        "pareto": str(pareto(contenders, out / "pareto.png", f"Accuracy vs latency, {tag}")),
        "breakdown": str(breakdown(contenders, out / "latency_breakdown.png", f"Latency per frame, {tag}")),
        "sizes": str(sizes(contenders, out / "size_per_board.png", f"Engine size per board, {tag}")),
    }
