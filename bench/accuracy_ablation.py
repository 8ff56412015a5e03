"""The accuracy ablation (issue 15): one lever at a time from a method's defaults, each a real
`vitfleet decompose` run on the full Fashion-MNIST split, scored on the 10,000 test images.

    python -m vitfleet.bench.accuracy_ablation run edvit-kd            # one row (resumable: a finished row is kept)
    python -m vitfleet.bench.accuracy_ablation run --method edvit      # every row of a method, in table order
    python -m vitfleet.bench.accuracy_ablation report                  # docs/benchmarks.md section + bench/results/ablation.json

A row whose lever only touches the fusion head starts from a copy of its base row's parts: the pipeline's
stage keys still decide (a copied part whose settings differ is retrained, not trusted), and the row's minutes
are then its own fusion stage plus the base row's part stages, so every row's minutes are a full run's cost.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from vitfleet.bench.machine import machine_facts
from vitfleet.bench.report import write_section

BEGIN, END = "<!-- ablation:begin -->", "<!-- ablation:end -->"
RESULTS = Path("bench/results/ablation.json")


@dataclass(frozen=True)
class Variant:
    name: str
    method: str
    lever: str
    args: tuple[str, ...] = ()
    base: str | None = None          # reuse this row's trained parts (fusion-only levers)
    seed: int = 0

    def command(self, teacher: Path, out: Path) -> list[str]:
        return ["vitfleet", "decompose", "--teacher", str(teacher), "--out", str(out), "--method", self.method,
                "--parts", "4", *(["--seed", str(self.seed)] if self.seed else []), *self.args, "--json"]


VARIANTS: tuple[Variant, ...] = (
    # ED-ViT (class-wise pruned teacher + MLP fusion)
    Variant("edvit-default", "edvit", "the defaults before the ablation"),
    Variant("edvit-kd4", "edvit", "part KD: teacher soft logits (classes + other), T=4", ("--part-kd-temperature", "4")),
    Variant("edvit-budget10", "edvit", "part budget 1/12 -> 1/10", ("--part-budget", "0.1")),
    Variant("edvit-confusion", "edvit", "partition: confusion (teacher probabilities) vs random",
            ("--partition", "confusion")),
    Variant("edvit-prune3", "edvit", "iterative pruning, 3 steps", ("--prune-steps", "3")),
    Variant("edvit-epochs14", "edvit", "part epochs 10 -> 14", ("--epochs", "14")),
    Variant("edvit-fusion-soft", "edvit", "fusion head on the teacher's soft labels (T=2)",
            ("--fusion-soft-temperature", "2"), base="edvit-default"),
    Variant("edvit-fusion-flip", "edvit", "fusion head also on flipped images' features", ("--fusion-flip-views",),
            base="edvit-default"),
    Variant("edvit-dropout0", "edvit", "fusion part dropout 0.15 -> 0", ("--part-dropout", "0"), base="edvit-default"),
    Variant("edvit-dropout30", "edvit", "fusion part dropout 0.15 -> 0.3", ("--part-dropout", "0.3"),
            base="edvit-default"),
    Variant("edvit-joint2", "edvit", "joint fine-tune of parts + head, 2 epochs", ("--joint-epochs", "2"),
            base="edvit-default"),
    # DeViT (DEKD-distilled students + linear fusion matched to the teacher's CLS token)
    Variant("devit-default", "devit", "the defaults before the ablation"),
    Variant("devit-batchmean", "devit", "relation KL summed over token rows (the reference's batchmean)",
            ("--relation-kl", "batchmean")),
    Variant("devit-budget10", "devit", "part budget 1/16 -> 1/10 (width ~1/4 -> ~1/3)", ("--part-budget", "0.1")),
    Variant("devit-other", "devit", "students also see other parts' images, as an 'other' class", ("--other-class",)),
    Variant("devit-confusion", "devit", "partition: confusion vs random", ("--partition", "confusion")),
    Variant("devit-fusion-soft", "devit", "fusion head: soft teacher logits (T=2) instead of hard",
            ("--fusion-soft-temperature", "2"), base="devit-default"),
    Variant("devit-fusion-flip", "devit", "fusion head also on flipped images' features", ("--fusion-flip-views",),
            base="devit-default"),
    Variant("devit-joint2", "devit", "joint fine-tune of parts + head, 2 epochs", ("--joint-epochs", "2"),
            base="devit-default"),
)
# The combinations the new defaults come from (every lever above that a one-lever row did not rule out), and
# leave-one-out rows that retrain only the fusion head on the combination's parts.
EDVIT_COMBO = ("--part-kd-temperature", "4", "--partition", "confusion", "--part-budget", "0.1")
DEVIT_COMBO = ("--relation-kl", "batchmean", "--other-class", "--partition", "confusion", "--part-budget", "0.1")
FUSION_COMBO = ("--fusion-soft-temperature", "2", "--fusion-flip-views")
VARIANTS += (
    Variant("edvit-combo", "edvit", "combination: part KD T=4 + confusion partition + budget 1/10 + fusion on "
            "soft labels and flipped views", EDVIT_COMBO + FUSION_COMBO),
    Variant("edvit-combo-hard-fusion", "edvit", "combination without the fusion levers (hard labels, no flips)",
            EDVIT_COMBO, base="edvit-combo"),
    Variant("edvit-combo-joint1", "edvit", "combination + 1 epoch of joint fine-tuning (parts + head, soft labels)",
            EDVIT_COMBO + FUSION_COMBO + ("--joint-epochs", "1"), base="edvit-combo"),
    Variant("edvit-combo-dropout0", "edvit", "combination with fusion part dropout 0.15 -> 0",
            EDVIT_COMBO + FUSION_COMBO + ("--part-dropout", "0"), base="edvit-combo"),
    Variant("devit-combo", "devit", "combination: batchmean relation KL + 'other' class + confusion partition + "
            "budget 1/10 + fusion on soft labels and flipped views", DEVIT_COMBO + FUSION_COMBO),
    Variant("devit-combo-hard-fusion", "devit", "combination without the fusion levers (hard labels, no flips)",
            DEVIT_COMBO, base="devit-combo"),
)
BY_NAME = {v.name: v for v in VARIANTS}

app = typer.Typer(add_completion=False, help=__doc__)


def _row_dir(runs: Path, name: str) -> Path:
    return runs / name


def _copy_parts(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name.startswith("part") or f.name == "cache":
            target = dst / f.name
            if f.is_dir():   # hard links: the teacher targets are ~1 GB and read-only
                shutil.copytree(f, target, dirs_exist_ok=True, copy_function=os.link)
            elif not target.exists():
                shutil.copy2(f, target)


def run_variant(v: Variant, teacher: Path, runs: Path, vitfleet: str,
                variants: dict[str, Variant] = BY_NAME) -> dict[str, Any]:
    out = _row_dir(runs, v.name)
    result_path = out / "ablation-row.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    base_seconds = 0.0
    if v.base is not None:
        base = run_variant(variants[v.base], teacher, runs, vitfleet, variants)
        _copy_parts(_row_dir(runs, v.base), out)
        base_seconds = base["part_seconds"]
    cmd = v.command(teacher, out)
    t0 = time.perf_counter()
    proc = subprocess.run([vitfleet, *cmd[1:]], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{v.name}: `{' '.join(cmd)}` failed: {proc.stderr.strip().splitlines()[-1:]}")
    summary = json.loads(proc.stdout)
    card = json.loads((out / "bundle.json").read_text())
    # Part stages' own time, so a fusion-only row built on these parts can report a full run's cost.
    part_seconds = wall if v.base is None else base_seconds
    row = {"name": v.name, "method": v.method, "lever": v.lever, "base": v.base, "seed": v.seed,
           "command": " ".join(cmd), "teacher_top1": summary["teacher_top1"], "fused_top1": summary["fused_top1"],
           "delta_pt": summary["delta_pt"], "largest_part_ratio": summary["largest_part_ratio"],
           "part_params": summary["part_params"], "partition": summary["partition"],
           "worst_missing_top1": min(v2 for k, v2 in summary.items() if k.startswith("top1_without_part")),
           "wall_seconds": wall, "part_seconds": part_seconds, "full_run_minutes": (wall + base_seconds) / 60,
           "recipe": card.get("recipe"), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result_path.write_text(json.dumps(row, indent=1))
    return row


@app.command()
def run(names: list[str] = typer.Argument(None, help="row names (default: every row of --method)"),
        method: str = typer.Option(None, help="devit or edvit: every row of that method"),
        teacher: Path = typer.Option(Path("runs/teacher")), runs: Path = typer.Option(Path("runs/ablation")),
        vitfleet: str = typer.Option(str(Path(sys.executable).parent / "vitfleet"))) -> None:
    chosen = [BY_NAME[n] for n in names] if names else [v for v in VARIANTS if method in (None, v.method)]
    unknown = [n for n in names or [] if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; rows: {', '.join(BY_NAME)}")
    for v in chosen:
        row = run_variant(v, teacher, runs, vitfleet)
        print(json.dumps({k: row[k] for k in ("name", "fused_top1", "delta_pt", "full_run_minutes")}), flush=True)


def _rows(runs: Path) -> list[dict[str, Any]]:
    rows = []
    for v in VARIANTS:
        path = _row_dir(runs, v.name) / "ablation-row.json"
        if path.exists():
            rows.append(json.loads(path.read_text()))
    for path in sorted(runs.glob("*/ablation-row.json")):   # extra rows (combinations, seeds) run by name
        row = json.loads(path.read_text())
        if row["name"] not in BY_NAME:
            rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    lines = ["Each row is one `vitfleet decompose` run (K = 4, the full 60,000 training images, top-1 on all",
             "10,000 test images; one seed, so differences under ~0.3 pt are within noise). Δ is against the",
             "row's own teacher; \"vs\" against the row whose parts it reuses, else the method's default row.",
             "Minutes are a whole run's (a fusion-only row adds its base row's run). Rows not in the table were",
             "not run.",
             f"CPU: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores.", ""]
    for method in ("edvit", "devit"):
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        default = next((r for r in mine if r["name"] == f"{method}-default"), None)
        lines += [f"**{'ED-ViT' if method == 'edvit' else 'DeViT'}**", "",
                  "| row | lever | fused top-1 | Δ vs teacher | vs | worst part missing | largest part | "
                  "minutes | command |", "|---|---|---|---|---|---|---|---|---|"]
        by_name = {r["name"]: r for r in mine}
        for r in mine:
            # A fusion-only row is compared with the row whose parts it reuses; any other with the default row.
            ref = by_name.get(r["base"]) if r.get("base") else default
            vs = "-" if ref is None or r is ref else f"{r['delta_pt'] - ref['delta_pt']:+.2f} pt ({ref['name']})"
            lines.append(f"| {r['name']} | {r['lever']} | {100 * r['fused_top1']:.2f} % | {r['delta_pt']:+.2f} pt | "
                         f"{vs} | {100 * r['worst_missing_top1']:.2f} % | 1/{1 / r['largest_part_ratio']:.1f} "
                         f"of the teacher's params | {r['full_run_minutes']:.1f} | `{r['command']}` |")
        lines.append("")
    return "\n".join(lines)


@app.command()
def report(runs: Path = typer.Option(Path("runs/ablation")),
           doc: Path = typer.Option(Path("docs/benchmarks.md"))) -> None:
    rows = _rows(runs)
    facts = machine_facts()
    machine = {"cpu": facts["cpu"], "cores": facts["cores"]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": facts, "rows": rows}, indent=1))
    write_section(doc, render(rows, machine), BEGIN, END)
    print(f"{len(rows)} rows -> {doc} and {RESULTS}")


if __name__ == "__main__":
    app()
