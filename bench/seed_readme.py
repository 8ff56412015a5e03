"""README's "At the papers' scale" lines, rendered from bench/results/seed.json (between the seed-readme markers, when
the README has them), so the headline there is the run's own figures and names the command that wrote them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN, END = "<!-- seed-readme:begin -->", "<!-- seed-readme:end -->"


def _x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}×"


def _measured(results: dict[str, Any], method: str) -> dict[str, Any] | None:
    return next(
        (
            m
            for m in results.get("measured", [])
            if m["teacher"].startswith("ViT-B") and m["parts"] == 4 and m["method"] == method and "speedup_e2e_p50" in m
        ),
        None,
    )


def _row(results: dict[str, Any], method: str) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in results["rows"]
            if r["teacher"].startswith("ViT-B")
            and r["parts"] == 4
            and r["method"] == method
            and r["precision"] == "int8"
        ),
        None,
    )


def _goal_line(results: dict[str, Any]) -> str:
    goals = results["settings"].get("measured_goal", {})
    parts = []
    for method, name in (("edvit", "ED-ViT"), ("devit", "DeViT")):
        m = _measured(results, method)
        goal = goals.get(method)
        if m is None:
            parts.append(f"{name}: not measured")
            continue
        met = "met" if goal is not None and m["speedup_e2e_p50"] >= goal else "**not met**"
        parts.append(f"{name} ≥ {goal:g}× {met}")
    return "; ".join(parts)


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    date = results["started_utc"][:10]
    lines = [
        f"At the papers' scale, {date} (`{results['command']}` = `make bench SCALE=seed`, figures from "
        f"`bench/results/seed.json`; random-init ViT-B/16 and DeiT-S/16 at 224² RGB, so **latency, size and bytes "
        f"only — no accuracy**; {m['cpu']}, {m.get('isa', '')}, load average {m['load_avg_at_start']} at the "
        "start):",
        "",
    ]
    ed, de = _measured(results, "edvit"), _measured(results, "devit")
    if ed or de:
        q = (ed or de)["cores_per_board"]  # type: ignore[index]
        said = ", ".join(
            f"{name} **{_x(r['speedup_e2e_p50'])}** e2e p50 ({r['fleet']['e2e_p50_ms']:.0f} vs "
            f"{r['teacher_board']['e2e_p50_ms']:.0f} ms; p99 {_x(r['speedup_e2e_p99'])}, frames/s "
            f"{_x(r['speedup_fps'])})"
            for name, r in (("ED-ViT", ed), ("DeViT", de))
            if r
        )
        ceiling = ", ".join(
            f"{name} {r['compute_speedup_same_precision']:.2f}×"
            for name, r in (("ED-ViT", _row(results, "edvit")), ("DeViT", _row(results, "devit")))
            if r and r.get("compute_speedup_same_precision")
        )
        lines.append(
            f"- ViT-B/16 K = 4 int8, **measured**: four boards, each its own cgroup quota of {q:g} cores and "
            f"its own network namespace on the `{(ed or de)['profile']}` link profile, against the int8 "  # type: ignore[index]
            f"teacher as one board at the same quota through the same camera, broker and aggregator: {said}. "
            f"Issue 31's goal: {_goal_line(results)} -- at the recipes' part budget the teacher / slowest part "
            f"compute ratio alone (int8, whole core, no network) is {ceiling}, so no transport could reach it."
        )
    computed = [(name, _row(results, method)) for name, method in (("ED-ViT", "edvit"), ("DeViT", "devit"))]
    if all(r for _, r in computed):
        lines.append(
            "- The computed critical path it replaces (slowest part and fusion on a whole idle core + the "
            "transport measured in this K's lab fleet), int8 parts vs the int8 teacher: "
            + ", ".join(f"{n} {_x(r['speedup_vs_teacher_same_precision'])}" for n, r in computed)  # type: ignore[index]
            + " (vs the fp32 teacher, not like for like: "
            + ", ".join(f"{n} {_x(r['speedup_vs_teacher_fp32'])}" for n, r in computed)
            + "). "  # type: ignore[index]
            + "Part budgets: the recipes' defaults ("
            + ", ".join(f"{n} {r['budget']:.3g}" for n, r in computed)
            + " of the teacher's parameters); "  # type: ignore[index]
            + "largest board "
            + ", ".join(f"{n} 1/{r['size_reduction_largest']:.1f}" for n, r in computed)  # type: ignore[index]
            + " of the teacher's fp32 bytes; "
            + ", ".join(f"{n} {2 * r['feature_dim']} B" for n, r in computed)  # type: ignore[index]
            + f" of float16 features per board per frame; JPEG frames ~{results['jpeg']['frame_message_bytes_mean'] / 1000:.1f} kB."
        )
    proj = [
        p
        for p in results.get("projection", {}).get("4", [])
        if p["teacher"].startswith("ViT-B") and p["method"] == "edvit"
    ]
    if proj:
        est = ", ".join(f"{p['board']} {_x(p['speedup'])}" for p in proj if p["pays"])
        slow = [p for p in proj if not p["pays"]]
        line = f"- Estimated on boards (ED-ViT, published ViT-Tiny board figures × this machine's timings): {est}."
        for p in slow:
            line += (
                f" On a {p['board']} one board runs the whole ViT-B/16 in {p['teacher_on_board_ms']:g} ms "
                f"({p['teacher_source'].split(' (')[0]}), so a K = 4 fleet of them is *slower* "
                f"({_x(p['speedup'])}, estimate): decomposition does not pay there unless the model does not fit "
                "or the board is shared."
            )
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_readme_lines(readme: Path, results: dict[str, Any]) -> bool:
    """Replace the lines between the markers; False (and nothing written) when the README has no markers."""
    if not readme.exists():
        return False
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{render(results)}{END}{tail}")
    return True
