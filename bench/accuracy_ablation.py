"""The accuracy ablation: one lever at a time from a method's defaults, each a real
`vitfleet decompose` run on the full Fashion-MNIST split, scored on the 10,000 test images.

    python -m vitfleet.bench.accuracy_ablation run edvit-kd            # one row (resumable: a finished row is kept)
    python -m vitfleet.bench.accuracy_ablation run --method edvit      # every row of a method, in table order
    python -m vitfleet.bench.accuracy_ablation report                  # docs/benchmarks.md section + bench/results/ablation.json
    python -m vitfleet.bench.accuracy_ablation pin-teacher runs/teacher   # keep this teacher for later sessions' rows

Rows are cut from the pinned teacher (bench/teachers/ablation) when its weights are there: retraining on
another kind of CPU lands on another top-1 (89.88 %, 89.79 %, 90.11 %; on the AMD EPYC machines `make teacher`
gave the pinned weights bit for bit three times), and rows cut from different teachers do not compare cleanly. Its card (with the weights' sha256) is committed; its weights
(10.7 MB) are an artifact and stay out of git, so a new machine re-pins a retrained teacher (`--replace`).

A row whose lever only touches the fusion head starts from a copy of its base row's parts: the pipeline's
stage keys still decide (a copied part whose settings differ is retrained, not trusted), and the row's minutes
are then its own fusion stage plus the base row's part stages, so every row's minutes are a full run's cost.
Since the tenth session a row that trains its own parts takes the teacher targets a finished row of the
same teacher already computed; the report's minutes name that row, and those minutes leave the targets out.
"""

from __future__ import annotations

import json
import os
import re
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
from vitfleet.decompose.default_options import recipe_deviations

BEGIN, END = "<!-- ablation:begin -->", "<!-- ablation:end -->"
RESULTS = Path("bench/results/ablation.json")
PINNED_TEACHER = Path("bench/teachers/ablation")


@dataclass(frozen=True)
class Variant:
    name: str
    method: str
    lever: str
    args: tuple[str, ...] = ()
    base: str | None = None  # reuse this row's trained parts (fusion-only levers)
    seed: int = 0
    ref: str | None = None  # the row this one is compared with ("vs"); default: its base row

    def command(self, teacher: Path, out: Path) -> list[str]:
        return [
            "vitfleet",
            "decompose",
            "--teacher",
            str(teacher),
            "--out",
            str(out),
            "--method",
            self.method,
            "--parts",
            "4",
            *(["--seed", str(self.seed)] if self.seed else []),
            *self.args,
            "--json",
        ]


# Every row spells out its whole recipe, so a row keeps its meaning when the defaults (decompose/recipes.py)
# change. Two families per method: one lever added to the defaults the levers were first measured against
# ("previous"), and one lever taken away from today's defaults ("combo", the combination the defaults were set from).
EDVIT_PREVIOUS = (
    "--partition",
    "random",
    "--part-budget",
    "0.08333",
    "--part-kd-temperature",
    "0",
    "--fusion-soft-temperature",
    "0",
    "--no-fusion-flip-views",
)
DEVIT_PREVIOUS = (
    "--partition",
    "random",
    "--part-budget",
    "0.0625",
    "--relation-kl",
    "row-mean",
    "--no-other-class",
    "--fusion-soft-temperature",
    "0",
    "--no-fusion-flip-views",
)
EDVIT_COMBO = ("--part-kd-temperature", "4", "--partition", "confusion", "--part-budget", "0.1")
DEVIT_COMBO = ("--relation-kl", "batchmean", "--other-class", "--partition", "confusion", "--part-budget", "0.1")
FUSION_COMBO = ("--fusion-soft-temperature", "2", "--fusion-flip-views")
HARD_FUSION = ("--fusion-soft-temperature", "0", "--no-fusion-flip-views")


def _family(flag: str) -> str:
    """`--other-class` and `--no-other-class` set the same thing."""
    return flag.replace("--no-", "--", 1)


def _without(args: tuple[str, ...], flag: str, replacement: tuple[str, ...]) -> tuple[str, ...]:
    """`args` with `flag` (either of a --x/--no-x pair, and its value if it takes one) replaced."""
    out: list[str] = []
    i = 0
    while i < len(args):
        if _family(args[i]) == _family(flag):
            takes_value = i + 1 < len(args) and not args[i + 1].startswith("--")
            i += 2 if takes_value else 1
            out += replacement
        else:
            out.append(args[i])
            i += 1
    return tuple(out)


def _previous(name: str, method: str, lever: str, args: tuple[str, ...] = (), fusion_only: bool = False) -> Variant:
    prev = EDVIT_PREVIOUS if method == "edvit" else DEVIT_PREVIOUS
    kept = prev
    for flag in (a for a in args if a.startswith("--")):
        kept = _without(kept, flag, ())
    return Variant(
        name, method, lever, kept + args, base=f"{method}-previous" if fusion_only else None, ref=f"{method}-previous"
    )


# Today's defaults as rows: DeViT's are its combination, ED-ViT's add 14 part epochs and one joint epoch.
EDVIT_DEFAULTS = EDVIT_COMBO + FUSION_COMBO + ("--epochs", "14", "--joint-epochs", "1")
DEVIT_DEFAULTS = DEVIT_COMBO + FUSION_COMBO
DEFAULT_ROW = {"edvit": "edvit-combo-epochs14-joint1", "devit": "devit-combo"}


def _minus(name: str, method: str, lever: str, flag: str, replacement: tuple[str, ...]) -> Variant:
    defaults = EDVIT_DEFAULTS if method == "edvit" else DEVIT_DEFAULTS
    return Variant(name, method, lever, _without(defaults, flag, replacement), ref=DEFAULT_ROW[method])


VARIANTS: tuple[Variant, ...] = (
    # ED-ViT (class-wise pruned teacher + MLP fusion): one lever added to the previous defaults
    Variant("edvit-previous", "edvit", "the defaults before issue 15", EDVIT_PREVIOUS),
    _previous(
        "edvit-kd4", "edvit", "part KD: teacher soft logits (classes + other), T=4", ("--part-kd-temperature", "4")
    ),
    _previous("edvit-budget10", "edvit", "part budget 1/12 -> 1/10", ("--part-budget", "0.1")),
    _previous(
        "edvit-confusion",
        "edvit",
        "partition: confusion (teacher probabilities) vs random",
        ("--partition", "confusion"),
    ),
    _previous("edvit-prune3", "edvit", "iterative pruning, 3 steps", ("--prune-steps", "3")),
    _previous("edvit-epochs14", "edvit", "part epochs 10 -> 14", ("--epochs", "14")),
    _previous(
        "edvit-lr2e-3",
        "edvit",
        "part peak learning rate 1e-3 -> 2e-3 (warm-up + cosine, as before)",
        ("--part-lr", "0.002"),
    ),
    _previous(
        "edvit-schedule-linear",
        "edvit",
        "part learning rate decays linearly instead of by cosine",
        ("--part-lr-schedule", "linear"),
    ),
    _previous(
        "edvit-warmup20", "edvit", "part learning-rate warm-up 5 % -> 20 % of the steps", ("--part-warmup", "0.2")
    ),
    _previous(
        "edvit-fusion-soft",
        "edvit",
        "fusion head on the teacher's soft labels (T=2)",
        ("--fusion-soft-temperature", "2"),
        fusion_only=True,
    ),
    _previous(
        "edvit-fusion-flip",
        "edvit",
        "fusion head also on flipped images' features",
        ("--fusion-flip-views",),
        fusion_only=True,
    ),
    _previous("edvit-dropout0", "edvit", "fusion part dropout 0.15 -> 0", ("--part-dropout", "0"), fusion_only=True),
    _previous(
        "edvit-dropout30", "edvit", "fusion part dropout 0.15 -> 0.3", ("--part-dropout", "0.3"), fusion_only=True
    ),
    _previous(
        "edvit-joint2", "edvit", "joint fine-tune of parts + head, 2 epochs", ("--joint-epochs", "2"), fusion_only=True
    ),
    # DeViT (DEKD-distilled students + linear fusion matched to the teacher's CLS token)
    Variant("devit-previous", "devit", "the defaults before issue 15", DEVIT_PREVIOUS),
    _previous(
        "devit-batchmean",
        "devit",
        "relation KL summed over token rows (the reference's batchmean)",
        ("--relation-kl", "batchmean"),
    ),
    _previous("devit-budget10", "devit", "part budget 1/16 -> 1/10 (width ~1/4 -> ~1/3)", ("--part-budget", "0.1")),
    _previous("devit-other", "devit", "students also see other parts' images, as an 'other' class", ("--other-class",)),
    _previous("devit-confusion", "devit", "partition: confusion vs random", ("--partition", "confusion")),
    _previous(
        "devit-lr2e-3",
        "devit",
        "student peak learning rate 1e-3 -> 2e-3 (warm-up + cosine, as before)",
        ("--part-lr", "0.002"),
    ),
    _previous(
        "devit-schedule-linear",
        "devit",
        "student learning rate decays linearly instead of by cosine",
        ("--part-lr-schedule", "linear"),
    ),
    _previous(
        "devit-fusion-soft",
        "devit",
        "fusion head: soft teacher logits (T=2) instead of hard",
        ("--fusion-soft-temperature", "2"),
        fusion_only=True,
    ),
    _previous(
        "devit-fusion-flip",
        "devit",
        "fusion head also on flipped images' features",
        ("--fusion-flip-views",),
        fusion_only=True,
    ),
    _previous(
        "devit-joint2", "devit", "joint fine-tune of parts + head, 2 epochs", ("--joint-epochs", "2"), fusion_only=True
    ),
    # The combinations the defaults come from, and one lever taken away from them at a time.
    Variant(
        "edvit-combo",
        "edvit",
        "combination: part KD T=4 + confusion partition + budget 1/10 + fusion on soft labels and flipped views",
        EDVIT_COMBO + FUSION_COMBO,
    ),
    Variant(
        "edvit-combo-hard-fusion",
        "edvit",
        "combination without the fusion levers (hard labels, no flips)",
        EDVIT_COMBO + HARD_FUSION,
        base="edvit-combo",
    ),
    _minus(
        "edvit-defaults-random",
        "edvit",
        "today's defaults with the random partition",
        "--partition",
        ("--partition", "random"),
    ),
    _minus(
        "edvit-defaults-no-kd",
        "edvit",
        "today's defaults without part KD (labels only)",
        "--part-kd-temperature",
        ("--part-kd-temperature", "0"),
    ),
    _minus(
        "edvit-defaults-budget12",
        "edvit",
        "today's defaults at the previous budget 1/12",
        "--part-budget",
        ("--part-budget", "0.08333"),
    ),
    Variant(
        "edvit-combo-joint1",
        "edvit",
        "combination + 1 epoch of joint fine-tuning (parts + head, soft labels)",
        EDVIT_COMBO + FUSION_COMBO + ("--joint-epochs", "1"),
        base="edvit-combo",
    ),
    Variant(
        "edvit-combo-epochs14-joint1",
        "edvit",
        "combination + part epochs 10 -> 14 + 1 epoch of joint fine-tuning",
        EDVIT_DEFAULTS,
        ref="edvit-combo",
    ),
    Variant(
        "edvit-combo-dropout0",
        "edvit",
        "combination with fusion part dropout 0.15 -> 0",
        EDVIT_COMBO + FUSION_COMBO + ("--part-dropout", "0"),
        base="edvit-combo",
    ),
    Variant(
        "devit-combo",
        "devit",
        "combination: batchmean relation KL + 'other' class + confusion partition + "
        "budget 1/10 + fusion on soft labels and flipped views",
        DEVIT_COMBO + FUSION_COMBO,
    ),
    Variant(
        "devit-combo-hard-fusion",
        "devit",
        "combination without the fusion levers (hard labels, no flips)",
        DEVIT_COMBO + HARD_FUSION,
        base="devit-combo",
    ),
    _minus(
        "devit-defaults-random",
        "devit",
        "today's defaults with the random partition",
        "--partition",
        ("--partition", "random"),
    ),
    _minus(
        "devit-defaults-no-other",
        "devit",
        "today's defaults without the 'other' class",
        "--other-class",
        ("--no-other-class",),
    ),
    _minus(
        "devit-defaults-row-mean",
        "devit",
        "today's defaults with the row-mean relation KL",
        "--relation-kl",
        ("--relation-kl", "row-mean"),
    ),
    _minus(
        "devit-defaults-budget16",
        "devit",
        "today's defaults at the previous budget 1/16",
        "--part-budget",
        ("--part-budget", "0.0625"),
    ),
    # Fusion-stage levers taken away from (or added to) today's defaults: they reuse the default row's parts (for
    # ED-ViT the parts from before its joint epoch, which the pipeline keeps in cache/), so they cost minutes.
    Variant(
        "edvit-defaults-joint0",
        "edvit",
        "today's defaults without the joint epoch",
        _without(EDVIT_DEFAULTS, "--joint-epochs", ("--joint-epochs", "0")),
        base=DEFAULT_ROW["edvit"],
    ),
    Variant(
        "edvit-defaults-hard-fusion",
        "edvit",
        "today's defaults without the fusion levers (hard labels, no flips)",
        _without(
            _without(EDVIT_DEFAULTS, "--fusion-soft-temperature", ("--fusion-soft-temperature", "0")),
            "--fusion-flip-views",
            ("--no-fusion-flip-views",),
        ),
        base=DEFAULT_ROW["edvit"],
    ),
    Variant(
        "devit-defaults-joint1",
        "devit",
        "today's defaults + 1 epoch of joint fine-tuning (parts + head)",
        DEVIT_DEFAULTS + ("--joint-epochs", "1"),
        base=DEFAULT_ROW["devit"],
    ),
    # DEKD's weights (the paper gives the loss, not tuned values for this teacher), moved from today's defaults.
    Variant(
        "devit-defaults-alpha0",
        "devit",
        "DEKD α 0.5 -> 0: true labels only, no teacher hard labels",
        DEVIT_DEFAULTS + ("--dekd-alpha", "0"),
        ref=DEFAULT_ROW["devit"],
    ),
    Variant(
        "devit-defaults-alpha1",
        "devit",
        "DEKD α 0.5 -> 1: the teacher's hard labels only",
        DEVIT_DEFAULTS + ("--dekd-alpha", "1"),
        ref=DEFAULT_ROW["devit"],
    ),
    Variant(
        "devit-defaults-gammas-x2",
        "devit",
        "DEKD relation weights γ (q, k, v) doubled to 0.4, 0.2, 0.6",
        DEVIT_DEFAULTS + ("--dekd-gammas", "0.4,0.2,0.6"),
        ref=DEFAULT_ROW["devit"],
    ),
    # The teacher's augmentation (random horizontal flips) in part training: DeViT students learn the teacher's
    # targets on the mirrored pixels (decompose/students.py, mirrored_batch); ED-ViT parts have always flipped.
    Variant(
        "devit-defaults-flips",
        "devit",
        "students train on flipped images too, with the teacher's targets on them (the teacher's augmentation)",
        DEVIT_DEFAULTS + ("--part-flips",),
        ref=DEFAULT_ROW["devit"],
    ),
    Variant(
        "edvit-defaults-no-flips",
        "edvit",
        "today's defaults with parts trained on unflipped images only",
        EDVIT_DEFAULTS + ("--no-part-flips",),
        ref=DEFAULT_ROW["edvit"],
    ),
)


def _with_seed(v: Variant, seed: int) -> Variant:
    # A fusion-only row's seed N reuses the parts of its base row's seed N, so each seed is a pair from one run.
    return Variant(
        f"{v.name}-seed{seed}",
        v.method,
        f"{v.lever} (seed {seed})",
        v.args,
        seed=seed,
        ref=v.name,
        base=f"{v.base}-seed{seed}" if v.base else None,
    )


# The defaults over two more seeds (the rows above are seed 0), and the candidate for DeViT's next default (one
# joint epoch: its one-seed gain is in docs/benchmarks.md, too small to change a default on one seed).
SEEDED = (*DEFAULT_ROW.values(), "devit-defaults-joint1")
VARIANTS += tuple(_with_seed(v, seed) for v in VARIANTS if v.name in SEEDED for seed in (1, 2))
BY_NAME = {v.name: v for v in VARIANTS}

app = typer.Typer(add_completion=False, help=__doc__)


def _row_dir(runs: Path, name: str) -> Path:
    return runs / name


def _copy_parts(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name.startswith("part") or f.name == "cache":
            target = dst / f.name
            if f.is_dir():  # hard links: the teacher targets are ~1 GB and read-only
                shutil.copytree(f, target, dirs_exist_ok=True, copy_function=os.link)
            elif not target.exists():
                shutil.copy2(f, target)


def _share_teacher_targets(v: Variant, teacher: Path, runs: Path, out: Path) -> str | None:
    """Hard-link the teacher targets a finished row already computed into this row's cache (minutes of teacher
    forward passes per row, ~1 GB each). Only the files this row's run would name (teacher hash,
    training subset, seed) are linked, and the pipeline reuses them as its own. Returns the row the plain targets
    came from, which the report names beside the row's minutes: those minutes then leave the targets out."""
    from vitfleet.decompose.pipeline import targets_cache_names, targets_key
    from vitfleet.decompose.teacher import read_card

    limit = v.args[v.args.index("--train-limit") + 1] if "--train-limit" in v.args else None
    tkey = targets_key(read_card(teacher).weights_sha256, int(limit) if limit else None, v.seed)
    names = targets_cache_names(tkey)
    cache, source = out / "cache", None
    for name in names:
        if (cache / name).exists():
            continue
        for done in sorted(runs.glob("*/ablation-row.json")):
            if (done.parent / "cache" / name).exists():
                cache.mkdir(parents=True, exist_ok=True)
                os.link(done.parent / "cache" / name, cache / name)
                source = source or done.parent.name
                break
    return source


def run_variant(
    v: Variant, teacher: Path, runs: Path, vitfleet: str, variants: dict[str, Variant] = BY_NAME
) -> dict[str, Any]:
    out = _row_dir(runs, v.name)
    result_path = out / "ablation-row.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    base_seconds = 0.0
    targets_from = None
    if v.base is not None:
        base = run_variant(variants[v.base], teacher, runs, vitfleet, variants)
        _copy_parts(_row_dir(runs, v.base), out)
        base_seconds = base["part_seconds"]
    else:
        targets_from = _share_teacher_targets(v, teacher, runs, out)
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
    row = {
        "name": v.name,
        "method": v.method,
        "lever": v.lever,
        "base": v.base,
        "ref": v.ref,
        "seed": v.seed,
        "command": " ".join(cmd),
        "teacher_top1": summary["teacher_top1"],
        "fused_top1": summary["fused_top1"],
        "delta_pt": summary["delta_pt"],
        "largest_part_ratio": summary["largest_part_ratio"],
        "part_params": summary["part_params"],
        "partition": summary["partition"],
        "worst_missing_top1": min(v2 for k, v2 in summary.items() if k.startswith("top1_without_part")),
        "wall_seconds": wall,
        "part_seconds": part_seconds,
        "full_run_minutes": (wall + base_seconds) / 60,
        "targets_from": targets_from,
        "recipe": card.get("recipe"),
        "teacher_sha256": card["teacher"]["weights_sha256"],
        "cpu": _cpu(machine_facts()),
        "threads": os.environ.get("VITFLEET_THREADS", "all"),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    result_path.write_text(json.dumps(row, indent=1))
    return row


@app.command()
def run(
    names: list[str] = typer.Argument(None, help="row names (default: every row of --method)"),
    method: str = typer.Option(None, help="devit or edvit: every row of that method"),
    teacher: Path = typer.Option(
        None, help=f"default: the pinned teacher ({PINNED_TEACHER}) if there is one, else runs/teacher"
    ),
    runs: Path = typer.Option(Path("runs/ablation")),
    vitfleet: str = typer.Option(str(Path(sys.executable).parent / "vitfleet")),
) -> None:
    if teacher is None:
        teacher = PINNED_TEACHER if (PINNED_TEACHER / "teacher.safetensors").exists() else Path("runs/teacher")
    chosen = [BY_NAME[n] for n in names] if names else [v for v in VARIANTS if method in (None, v.method)]
    unknown = [n for n in names or [] if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; rows: {', '.join(BY_NAME)}")
    for v in chosen:
        row = run_variant(v, teacher, runs, vitfleet)
        print(json.dumps({k: row[k] for k in ("name", "fused_top1", "delta_pt", "full_run_minutes")}), flush=True)


@app.command("pin-teacher")
def pin_teacher(
    teacher: Path = typer.Argument(..., help="a teacher folder (from `make teacher`)"),
    to: Path = typer.Option(PINNED_TEACHER),
    replace: bool = typer.Option(False, help="replace a pinned teacher of another hash"),
) -> None:
    """Keep a teacher's card and weights (not its training state) for every later row."""
    from vitfleet.decompose.teacher import load_teacher, read_card

    _, card = load_teacher(teacher)  # checks the weights against the card's sha256
    pinned = read_card(to) if (to / "teacher.json").exists() else None  # its weights may be on another machine
    if pinned is not None and pinned.weights_sha256 == card.weights_sha256:
        # `make teacher` is deterministic on one kind of CPU: a retrain can give the very weights rows were cut
        # from. The committed card stays (only this run's timing would differ); the weights come back.
        shutil.copy2(teacher / card.weights, to / pinned.weights)
        print(
            f"teacher {card.weights_sha256[:12]} is the pinned one, bit for bit: kept the card in {to}, "
            f"restored its weights; rows cut from it stay comparable"
        )
        return
    if pinned is not None and not replace:
        raise SystemExit(
            f"{to} already holds teacher {pinned.weights_sha256[:12]} (rows were cut from it); "
            f"pass --replace to pin {card.weights_sha256[:12]} instead"
        )
    to.mkdir(parents=True, exist_ok=True)
    for name in ("teacher.json", card.weights):
        shutil.copy2(teacher / name, to / name)
    print(
        f"pinned teacher {card.weights_sha256[:12]} (top-1 {card.metrics.get('test_top1', float('nan')):.4f}) -> {to}"
    )


def _cpu(facts: dict[str, Any]) -> str:
    return ", ".join(str(facts[k]) for k in ("cpu", "isa") if facts.get(k))


Key = tuple[str, str]  # (row name, teacher)


def _teacher(row: dict[str, Any]) -> str:
    """Which teacher a row was cut from: its hash where recorded, else its test top-1 (older rows)."""
    return row.get("teacher_sha256") or f"top-1 {row['teacher_top1']:.4f}"


def _teacher_label(row: dict[str, Any]) -> str:
    """The teacher a row was cut from, for a reader: its top-1 and the first 12 hex digits of its weights' sha256."""
    sha = row.get("teacher_sha256")
    return f"{100 * row['teacher_top1']:.2f} % ({sha[:12] if sha else 'hash not recorded'})"


def _key(row: dict[str, Any]) -> Key:
    return row["name"], _teacher(row)


def _recorded_rows(results: Path) -> dict[Key, dict[str, Any]]:
    """The rows earlier sessions ran: their run folders do not outlive the machine, the results file does."""
    if not results.exists():
        return {}
    recorded = json.loads(results.read_text())
    rows = {}
    for row in recorded.get("rows", []):
        row.setdefault("cpu", _cpu(recorded.get("machine", {})))  # rows from before rows named their CPU
        rows[_key(row)] = row
    return rows


def _rows(runs: Path, results: Path = RESULTS) -> list[dict[str, Any]]:
    """Every row run so far, in table order. A row run here replaces the recorded row of the same name cut from
    the same teacher; one cut from another teacher is kept beside it, so each row still has the reference row
    from its own teacher to be compared with."""
    found = _recorded_rows(results)
    for path in sorted(runs.glob("*/ablation-row.json")):
        row = json.loads(path.read_text())
        found[_key(row)] = row
    rows = []
    for v in VARIANTS:
        for key in [k for k in found if k[0] == v.name]:
            row = found.pop(key)
            row["lever"], row["ref"] = v.lever, v.ref  # the table's wording and comparison are today's
            rows.append(row)
    return rows + list(found.values())  # extra rows (run by name from an earlier table) keep their own words


def _shown_command(row: dict[str, Any]) -> str:
    """The row's command as a reader would type it: where the row's folder was on the machine that ran it
    (a worktree beside the checkout, say) is not part of the recipe."""
    return re.sub(r"--out \S+", f"--out runs/ablation/{row['name']}", row["command"], count=1)


def _minutes(row: dict[str, Any]) -> str:
    threads = row.get("threads")
    text = f"{row['full_run_minutes']:.1f}" + (f" ({threads} thread{'s' * (threads != '1')})" if threads else "")
    return text + (f", teacher targets from {row['targets_from']}" if row.get("targets_from") else "")


def render(rows: list[dict[str, Any]], machine: dict[str, Any], pending: tuple[Variant, ...] = ()) -> str:
    lines = [
        "Each row is one `vitfleet decompose` run (K = 4, the full 60,000 training images, top-1 on all",
        "10,000 test images; one seed, so differences under ~0.3 pt are within noise). Δ is against the",
        "row's own teacher (the teacher column gives its top-1 and the first 12 hex digits of its weights'",
        "sha256; the first sessions' rows did not record the hash: until the fifth session each new machine",
        f'retrained it; since then rows are cut from the teacher pinned in {PINNED_TEACHER}). "vs" is the',
        "difference of the two rows' Δ: a one-lever row against the defaults before issue 15 (`*-previous`), a",
        "leave-one-out row against today's defaults (`*-defaults-*`), a fusion-only row against the row whose",
        "parts it reuses, each cut from the same teacher where such a row exists (a row re-run from another",
        "teacher stands beside the first); \"other teacher\" marks a pair cut from different teachers. Minutes are a whole run's (a fusion-only row adds its base row's run) on a 2-core",
        "machine (CPU column), with the torch threads it had; most ran beside another run, so they are upper bounds.",
        'Where the minutes say "teacher targets from" a row, that run reused its teacher targets and its',
        "minutes leave out computing them.",
        f"This report was generated on: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores.",
        "",
    ]
    for method in ("edvit", "devit"):
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        lines += [
            f"**{'ED-ViT' if method == 'edvit' else 'DeViT'}**",
            "",
            "| row | lever | fused top-1 | teacher | Δ vs teacher | vs | worst part missing | largest part | "
            "minutes | CPU | command |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        by_key = {_key(r): r for r in mine}
        latest = {r["name"]: r for r in mine}
        for r in mine:
            # A row is compared with the row it names (a fusion-only row: the one whose parts it reuses; a
            # row naming none, with the previous defaults), cut from the same teacher where there is one.
            ref_name = r.get("ref") or r.get("base") or f"{method}-previous"
            ref = by_key.get((ref_name, _teacher(r)), latest.get(ref_name))
            other = "" if ref is None or _teacher(ref) == _teacher(r) else ", other teacher"
            vs = "-" if ref is None or r is ref else f"{r['delta_pt'] - ref['delta_pt']:+.2f} pt ({ref['name']}{other})"
            today = (
                " (**= today's defaults**)" if r.get("recipe") and not recipe_deviations(method, 4, r["recipe"]) else ""
            )
            lines.append(
                f"| {r['name']}{today} | {r['lever']} | {100 * r['fused_top1']:.2f} % | "
                f"{_teacher_label(r)} | {r['delta_pt']:+.2f} pt | "
                f"{vs} | {100 * r['worst_missing_top1']:.2f} % | 1/{1 / r['largest_part_ratio']:.1f} "
                f"of the teacher's params | {_minutes(r)} | {r.get('cpu', '?')} | `{_shown_command(r)}` |"
            )
        lines.append("")
    lines += _seed_lines(rows)
    if pending:
        lines += [
            "Defined but not run yet (`python -m vitfleet.bench.accuracy_ablation run NAME`): "
            + ", ".join(f"`{v.name}`" for v in pending)
            + ".",
            "",
        ]
    return "\n".join(lines)


def _stem(name: str) -> str:
    """`<row>-seed<N>` is seed N of `<row>` (the row itself is seed 0)."""
    return re.sub(r"-seed\d+$", "", name)


def _one_per_seed(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A seed run twice from one teacher counts once: its latest run."""
    by_seed: dict[int, dict[str, Any]] = {}
    for m in sorted(members, key=lambda m: m.get("finished") or ""):
        by_seed[m["seed"]] = m
    return [by_seed[k] for k in sorted(by_seed)]


def _seed_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Mean and spread of a recipe over its seeds, per teacher: Δ moves with the teacher by as much as with the seed
    (the same recipe from three teachers spans -0.51 .. -0.17 pt), so runs from different teachers are never
    averaged together, and a seed is counted once per teacher."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        groups.setdefault(_stem(r["name"]), {}).setdefault(_teacher(r), []).append(r)
    lines = []
    for stem, by_teacher in groups.items():
        seeded = {t: _one_per_seed(m) for t, m in by_teacher.items()}
        if len({m["seed"] for members in seeded.values() for m in members}) < 2:
            continue  # one seed (from one or several teachers): the table's rows say it all
        averaged = [m for m in seeded.values() if len(m) >= 2]
        for teacher, members in ((t, m) for t, m in seeded.items() if len(m) >= 2):
            deltas = [m["delta_pt"] for m in members]
            tops = [100 * m["fused_top1"] for m in members]
            twice = len(by_teacher[teacher]) - len(members)
            lines.append(
                f"- `{stem}` from teacher {_teacher_label(members[0])}, seeds "
                f"{', '.join(str(m['seed']) for m in members)} ("
                + (f"{twice} re-run seed(s) counted once, by the latest run" if twice else "one run each")
                + "): fused "
                f"{sum(tops) / len(tops):.2f} %, Δ **{sum(deltas) / len(deltas):+.2f} pt** (spread "
                f"{min(deltas):+.2f} .. {max(deltas):+.2f} pt)"
            )
        single = [m[0] for m in seeded.values() if len(m) == 1]
        if single:
            runs = "; ".join(
                f"teacher {_teacher_label(m)}, seed {m['seed']}: Δ {m['delta_pt']:+.2f} pt" for m in single
            )
            lines.append(
                f"- `{stem}`{' also' if averaged else ''}: one seed per teacher ({runs}), so no mean"
                + (" across them" if len(single) > 1 else "")
            )
    return (
        [
            "**Seeds** (per teacher: runs from different teachers are not averaged, a seed counts once per teacher)",
            "",
            *lines,
            "",
        ]
        if lines
        else []
    )


@app.command()
def report(
    runs: Path = typer.Option(Path("runs/ablation")),
    doc: Path = typer.Option(Path("docs/benchmarks.md")),
    results: Path = typer.Option(RESULTS, help="the rows run so far (kept; rows in --runs replace theirs)"),
) -> None:
    rows = _rows(runs, results)
    facts = machine_facts()
    machine = {"cpu": _cpu(facts), "cores": facts["cores"]}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({"machine": facts, "rows": rows}, indent=1))
    done = {r["name"] for r in rows}
    write_section(doc, render(rows, machine, tuple(v for v in VARIANTS if v.name not in done)), BEGIN, END)
    print(f"{len(rows)} rows -> {doc} and {results}")


if __name__ == "__main__":
    app()
