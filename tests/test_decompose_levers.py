"""The accuracy levers, each exercised for real on the tiny teacher: soft-target KD into ED-ViT parts,
the fusion head on soft labels and flipped views, DeViT students with an "other" class, the probability-based
confusion partition and iterative pruning. The ablation (bench/accuracy_ablation.py) measures what they are
worth at full scale; these tests check that each does what it says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vitfleet.bench.accuracy_ablation import Variant, render, run_variant
from vitfleet.decompose.bundle import read_bundle
from vitfleet.decompose.distillation import restricted_logits, soft_kd_loss
from vitfleet.decompose.fusion_training import FusionRecipe
from vitfleet.decompose.partition import confusion_partition, soft_confusion
from vitfleet.decompose.pipeline import DecomposeOptions, decompose_teacher
from vitfleet.decompose.prune import PruneBudgetError, prune_to_budget
from vitfleet.decompose.students import PartRecipe, subset_data
from vitfleet.decompose.teacher import load_teacher
from vitfleet.decompose.teacher_targets import compute_targets
from vitfleet.decompose.training import to_tensors
from vitfleet.decompose.vit_arch import count_params

FAST = dict(train_limit=1500, test_limit=300, fusion_recipe=FusionRecipe(epochs=2, batch_size=128))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_restricted_logits_keep_the_teachers_probabilities() -> None:
    logits = torch.randn(5, 10)
    classes = [1, 4, 7]
    r = restricted_logits(logits, classes, other_class=True)
    p = torch.softmax(logits, 1)
    q = torch.softmax(r, 1)
    assert torch.allclose(q[:, :3], p[:, classes], atol=1e-6)
    assert torch.allclose(q[:, 3], 1 - p[:, classes].sum(1), atol=1e-6)
    assert restricted_logits(logits, classes, other_class=False).shape == (5, 3)


def test_soft_kd_is_zero_only_when_the_student_matches() -> None:
    t = torch.randn(8, 4)
    assert soft_kd_loss(t.clone(), t, 4.0).abs() < 1e-5
    assert soft_kd_loss(torch.zeros(8, 4), t, 4.0) > 0


def test_soft_confusion_groups_the_classes_the_teacher_mixes() -> None:
    # Two pairs the teacher mixes (0~1, 2~3) without ever getting them wrong: argmax counts see nothing.
    labels = np.array([0, 1, 2, 3, 4, 5] * 10)
    probs = np.full((60, 6), 0.02)
    for i, c in enumerate(labels):
        probs[i, c] = 0.7
        mate = {0: 1, 1: 0, 2: 3, 3: 2}.get(int(c))
        if mate is not None:
            probs[i, mate] = 0.22
    probs /= probs.sum(1, keepdims=True)
    assert (probs.argmax(1) == labels).all()
    partition = confusion_partition(soft_confusion(probs, labels, 6), 3)
    assert [0, 1] in partition and [2, 3] in partition


def test_iterative_pruning_reaches_a_budget_one_shot_cannot(tiny_teacher, fmnist_slices) -> None:
    folder, card = tiny_teacher
    teacher, _ = load_teacher(folder)
    x, y = to_tensors(fmnist_slices[0].head(256), card.preprocessing)
    n = count_params(teacher)
    budget = n // 16
    with pytest.raises(PruneBudgetError, match="--prune-steps"):
        prune_to_budget(teacher, x, y, budget, "width")
    step, _ = prune_to_budget(teacher, x, y, int(n / 4), "width")
    final, _ = prune_to_budget(step, x, y, budget, "width")
    assert 0.8 * budget <= count_params(final) <= budget


def test_edvit_with_part_kd_soft_fusion_and_flip_views(tiny_teacher, tmp_path: Path) -> None:
    folder, card = tiny_teacher
    opts = DecomposeOptions(
        method="edvit",
        parts=3,
        part_budget=0.3,
        partition="confusion",
        prune_steps=2,
        train_limit=1500,
        test_limit=300,
        part_recipe=PartRecipe(epochs=2, batch_size=64, kd_temperature=4.0),
        fusion_recipe=FusionRecipe(epochs=2, batch_size=128, soft_temperature=2.0, flip_views=True),
    )
    bundle = decompose_teacher(folder, tmp_path, opts)
    assert bundle.metrics["fused_top1"] > 0.5, bundle.metrics
    assert bundle.recipe is not None and bundle.recipe["part_recipe"]["kd_temperature"] == 4.0
    assert bundle.recipe["fusion_recipe"]["flip_views"] is True
    assert read_bundle(tmp_path).recipe == bundle.recipe
    # The confusion partition co-locates the teacher's most mixed pair: T-shirt/top (0) and Shirt (6).
    assert any({0, 6} <= set(p) for p in bundle.partition), bundle.partition


def test_devit_students_with_an_other_class(tiny_teacher, fmnist_slices, tmp_path: Path) -> None:
    folder, card = tiny_teacher
    teacher, _ = load_teacher(folder)
    x, y = to_tensors(fmnist_slices[0].head(400), card.preprocessing)
    data = subset_data(x, y, [0, 3, 6], compute_targets(teacher, x), other_fraction=0.5)
    assert data.teacher_local is not None and int(data.teacher_local.max()) == 3  # the "other" slot
    assert (data.y_local == 3).sum() == int(0.5 * (data.y_local < 3).sum())
    bundle = decompose_teacher(
        folder,
        tmp_path,
        DecomposeOptions(
            method="devit",
            parts=3,
            part_budget=0.3,
            other_class=True,
            part_recipe=PartRecipe(epochs=1, batch_size=64),
            **FAST,
        ),
    )
    assert all(p.other_class and p.arch.num_classes == len(p.classes) + 1 for p in bundle.parts)
    assert bundle.metrics["fused_top1"] > 0.4, bundle.metrics


def test_ablation_rows_reuse_parts_and_report(tiny_teacher, tmp_path: Path) -> None:
    folder, _ = tiny_teacher
    # No joint epoch: it rewrites the parts, and this row is about a fusion-only lever reusing them as they are.
    tiny = (
        "--part-budget",
        "0.3",
        "--train-limit",
        "600",
        "--test-limit",
        "200",
        "--epochs",
        "1",
        "--fusion-epochs",
        "1",
        "--joint-epochs",
        "0",
    )
    base = Variant("t-default", "edvit", "defaults", tiny)
    soft = Variant("t-soft", "edvit", "soft fusion", (*tiny, "--fusion-soft-temperature", "2"), base="t-default")
    variants = {v.name: v for v in (base, soft)}
    import shutil
    import sys

    vitfleet = shutil.which("vitfleet") or str(Path(sys.executable).parent / "vitfleet")
    row = run_variant(soft, folder, tmp_path, vitfleet, variants)
    base_row = json.loads((tmp_path / "t-default" / "ablation-row.json").read_text())
    # The fusion-only row trained no part: its part files are the base row's, byte for byte.
    for f in (tmp_path / "t-default").glob("part*.safetensors"):
        assert (tmp_path / "t-soft" / f.name).read_bytes() == f.read_bytes()
    assert row["full_run_minutes"] > row["wall_seconds"] / 60
    assert row["full_run_minutes"] == pytest.approx((row["wall_seconds"] + base_row["part_seconds"]) / 60)
    text = render([base_row, row], {"cpu": "test CPU", "cores": 2})
    assert "| t-soft | soft fusion |" in text and "test CPU" in text and "--fusion-soft-temperature 2" in text
    assert base_row["targets_from"] is None  # the first row of these runs computed its own teacher targets

    # A row that trains its own parts still takes the teacher targets a finished row computed (same teacher,
    # images and seed): the very file, and the report says where its targets came from.
    wider = Variant("t-wider", "edvit", "wider parts", (*tiny[:1], "0.4", *tiny[2:]))
    wide_row = run_variant(wider, folder, tmp_path, vitfleet, {"t-wider": wider})
    [shared] = (tmp_path / "t-default" / "cache").glob("targets-*.safetensors")
    assert (tmp_path / "t-wider" / "cache" / shared.name).stat().st_ino == shared.stat().st_ino
    assert sorted(p.name for p in (tmp_path / "t-wider" / "cache").glob("targets-*")) == [shared.name]
    assert wide_row["targets_from"] == "t-default" and wide_row["partition"] == base_row["partition"]
    assert "teacher targets from t-default" in render([wide_row], {"cpu": "test CPU", "cores": 2})


def _row(name: str, seed: int, fused: float, teacher: float, **extra: object) -> dict:
    return {
        "name": name,
        "method": "devit",
        "lever": "x",
        "base": None,
        "ref": None,
        "seed": seed,
        "command": f"vitfleet decompose --out {name}",
        "teacher_top1": teacher,
        "fused_top1": fused,
        "delta_pt": 100 * (fused - teacher),
        "largest_part_ratio": 0.09,
        "worst_missing_top1": 0.8,
        "full_run_minutes": 30.0,
        **extra,
    }


def test_ablation_report_keeps_the_rows_earlier_sessions_ran(tmp_path: Path) -> None:
    """runs/ does not outlive a session's machine: the report merges the recorded rows with the new ones. A re-run
    from the same teacher replaces its row; one from another teacher stands beside it, and each row is compared
    with the reference row cut from its own teacher."""
    from vitfleet.bench.accuracy_ablation import report

    results, runs, doc = tmp_path / "ablation.json", tmp_path / "runs", tmp_path / "benchmarks.md"
    old = [
        _row("devit-combo", 0, 0.8951, 0.8988),
        _row("devit-combo-seed1", 1, 0.8950, 0.8988),
        _row("devit-combo-seed2", 2, 0.8000, 0.8990, teacher_sha256="abc"),
    ]  # a bad row, re-run below
    results.write_text(json.dumps({"machine": {"cpu": "Old CPU", "isa": "no AMX"}, "rows": old}))
    new = [
        _row(
            "devit-combo-seed2",
            2,
            0.8940,
            0.8990,
            teacher_sha256="abc",
            cpu="New CPU",
            threads="1",
            command="vitfleet decompose --out /work/lanes/runs/ablation/devit-combo-seed2 --seed 2",
        ),
        _row("devit-combo", 0, 0.8970, 0.8990, teacher_sha256="abc", cpu="New CPU", threads="1"),
        _row(
            "devit-combo-hard-fusion",
            0,
            0.8900,
            0.9011,
            teacher_sha256="xyz",
            cpu="New CPU",
            threads="1",
            base="devit-combo",
        ),
    ]
    for i, row in enumerate(new):
        (runs / f"r{i}").mkdir(parents=True)
        (runs / f"r{i}" / "ablation-row.json").write_text(json.dumps(row))
    doc.write_text("before\n<!-- ablation:begin -->\nstale\n<!-- ablation:end -->\nafter\n")
    report(runs=runs, doc=doc, results=results)

    rows = json.loads(results.read_text())["rows"]
    assert sorted((r["name"], r.get("teacher_sha256", "-")) for r in rows) == [
        ("devit-combo", "-"),
        ("devit-combo", "abc"),
        ("devit-combo-hard-fusion", "xyz"),
        ("devit-combo-seed1", "-"),
        ("devit-combo-seed2", "abc"),
    ]
    seed2 = next(r for r in rows if r["name"] == "devit-combo-seed2")
    assert seed2["fused_top1"] == 0.8940  # the run replaced the recorded row
    assert next(r for r in rows if r["name"] == "devit-combo-seed1")["cpu"] == "Old CPU, no AMX"  # kept its CPU
    text = doc.read_text()
    assert "stale" not in text and text.startswith("before") and text.rstrip().endswith("after")
    assert "| devit-combo-seed2 | " in text and "| New CPU |" in text and "30.0 (1 thread)" in text
    assert "-0.30 pt (devit-combo)" in text  # seed 2 against seed 0 of its own teacher (abc)
    assert "-0.01 pt (devit-combo)" in text  # seed 1 against seed 0 of the 89.88 % teacher
    assert "(devit-combo, other teacher)" in text  # hard fusion: no devit-combo from its teacher
    # the teacher column names each row's teacher: its top-1 and the start of its weights' hash
    assert "| 89.90 % (abc) |" in text and "| 89.88 % (hash not recorded) |" in text
    # seed means per teacher, never across teachers (the same seed 0 from two teachers is not two seeds)
    assert "`devit-combo` from teacher 89.88 % (hash not recorded), seeds 0, 1 (one run each)" in text
    assert (
        "`devit-combo` from teacher 89.90 % (abc), seeds 0, 2 (one run each): fused 89.55 %, Δ **-0.35 pt** "
        "(spread -0.50 .. -0.20 pt)"
    ) in text
    assert "seeds 0, 0" not in text and "cut from 2 teachers" not in text
    assert "`devit-combo-seed2`" not in text.split("Defined but not run yet")[-1]
    # The command is shown as a reader would type it, not with the folder it ran in on that machine.
    assert "`vitfleet decompose --out runs/ablation/devit-combo-seed2 --seed 2`" in text and "/work/lanes" not in text


def test_seed_means_count_a_seed_once_per_teacher_and_never_mix_teachers() -> None:
    from vitfleet.bench.accuracy_ablation import _seed_lines

    rows = [
        _row("devit-combo", 0, 0.8950, 0.9000, teacher_sha256="t1" * 32, finished="2026-12-01T00:00:00Z"),
        _row("devit-combo-seed0", 0, 0.8970, 0.9000, teacher_sha256="t1" * 32, finished="2026-12-02T00:00:00Z"),
        _row("devit-combo-seed1", 1, 0.8990, 0.9000, teacher_sha256="t1" * 32, finished="2026-12-01T00:00:00Z"),
        _row("devit-combo-seed2", 2, 0.8000, 0.8100, teacher_sha256="t2" * 32),
    ]
    text = "\n".join(_seed_lines(rows))
    # teacher t1: seed 0 run twice counts once (its latest run, -0.30 pt), with seed 1 (-0.10 pt): mean -0.20 pt
    assert (
        "`devit-combo` from teacher 90.00 % (t1t1t1t1t1t1), seeds 0, 1 (1 re-run seed(s) counted once, by the "
        "latest run): fused 89.80 %, Δ **-0.20 pt** (spread -0.30 .. -0.10 pt)"
    ) in text
    # teacher t2's single seed stands apart: no mean across teachers
    assert "teacher 81.00 % (t2t2t2t2t2t2), seed 2: Δ -1.00 pt), so no mean" in text


def test_recipe_deviations_mark_a_short_recipe_and_not_the_default() -> None:
    from dataclasses import asdict

    from vitfleet.bench.preparation import FleetInputs
    from vitfleet.decompose.default_options import default_options, recipe_deviations

    default = json.loads(json.dumps(asdict(default_options("edvit", 4, test_limit=500, seed=0))))
    assert recipe_deviations("edvit", 4, default) == []  # evaluation size is not the recipe
    short = json.loads(json.dumps(asdict(default_options("edvit", 4, epochs=4, train_limit=30000))))
    assert recipe_deviations("edvit", 4, short) == ["part_recipe.epochs=4", "train_limit=30000"]
    assert recipe_deviations("devit", 8, None) == ["recipe not recorded (made before bundles recorded their recipe)"]
    fleet = FleetInputs("edvit", 8, Path("b"), {}, True, ("part_recipe.epochs=4",))
    assert fleet.label("int8") == "edvit K=8 int8 †" and fleet.label("int8", mark=False) == "edvit K=8 int8"
    assert FleetInputs("edvit", 4, Path("b"), {}, False).label("fp32") == "edvit K=4 fp32"


def test_every_ablation_row_spells_out_each_setting_once() -> None:
    """A row's command must not depend on today's defaults, nor set one thing twice (--x and --no-x)."""
    from vitfleet.bench.accuracy_ablation import BY_NAME, VARIANTS, _family, _without

    assert _without(("--a", "1", "--no-b", "--c", "2"), "--b", ("--b",)) == ("--a", "1", "--b", "--c", "2")
    assert _without(("--a", "1", "--c", "2"), "--a", ()) == ("--c", "2")
    pinned = {"--partition", "--part-budget", "--fusion-soft-temperature", "--fusion-flip-views"}
    for v in VARIANTS:
        families = [_family(a) for a in v.args if a.startswith("--")]
        assert len(families) == len(set(families)), v
        assert pinned <= set(families), v
        for other in (v.base, v.ref):
            assert other is None or BY_NAME[other].method == v.method, v
    assert "--other-class" in BY_NAME["devit-other"].args and "--no-other-class" not in BY_NAME["devit-other"].args
    # A fusion-only row's other seeds reuse the parts of their base row's same seed, never seed 0's.
    joint_seed1 = BY_NAME["devit-defaults-joint1-seed1"]
    assert joint_seed1.base == "devit-combo-seed1" and BY_NAME[joint_seed1.base].seed == joint_seed1.seed == 1


def test_part_lr_schedules_warm_up_then_fall_as_named() -> None:
    from vitfleet.decompose.training import warmup_decay

    def rates(shape: str) -> list[float]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = warmup_decay(opt, total_steps=100, warmup_steps=10, shape=shape)  # type: ignore[arg-type]
        out = []
        for _ in range(100):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    cosine, linear, constant = rates("cosine"), rates("linear"), rates("constant")
    for r in (cosine, linear, constant):
        assert r[0] == pytest.approx(0.1) and r[9] == pytest.approx(1.0)  # the same warm-up
    # 20 of 90 decay steps in: cosine still near the peak, linear already 22 % down, constant at it.
    assert cosine[30] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * 20 / 90)))
    assert linear[30] == pytest.approx(0.01 + 0.99 * (1 - 20 / 90))
    assert constant[30] == 1.0 and constant[99] == 1.0
    assert cosine[99] < 0.02 and linear[99] < 0.03


def test_schedule_and_dekd_flags_reach_the_recipe_and_the_deviations() -> None:
    from dataclasses import asdict

    from typer.testing import CliRunner

    from vitfleet.cli import app
    from vitfleet.decompose.default_options import default_options, recipe_deviations

    opts = default_options(
        "devit", 4, part_lr_schedule="linear", part_warmup=0.2, dekd_alpha=0.0, dekd_gammas=(0.4, 0.2, 0.6)
    )
    assert (opts.part_recipe.lr_schedule, opts.part_recipe.warmup_fraction) == ("linear", 0.2)
    assert (opts.part_recipe.dekd.alpha, opts.part_recipe.dekd.gammas) == (0.0, (0.4, 0.2, 0.6))
    recorded = json.loads(json.dumps(asdict(opts), default=str))
    assert recipe_deviations("devit", 4, recorded) == [
        "part_recipe.dekd.alpha=0.0",
        "part_recipe.dekd.gammas=[0.4, 0.2, 0.6]",
        "part_recipe.lr_schedule=linear",
        "part_recipe.warmup_fraction=0.2",
    ]
    # A bundle recorded before the schedule settings existed trained with warm-up 5 % + cosine: not a deviation.
    older = json.loads(json.dumps(asdict(default_options("devit", 4)), default=str))
    del older["part_recipe"]["lr_schedule"], older["part_recipe"]["warmup_fraction"]
    assert recipe_deviations("devit", 4, older) == []

    runner = CliRunner()
    for flags, says in (
        (["--dekd-gammas", "0.2,0.1"], "--dekd-gammas takes three comma-separated numbers"),
        (["--dekd-gammas", "a,b,c"], "--dekd-gammas takes three comma-separated numbers"),
        (["--dekd-alpha", "1.5"], "--dekd-alpha weighs"),
        (["--part-warmup", "1"], "--part-warmup is the fraction"),
    ):
        result = runner.invoke(app, ["decompose", "--teacher", "t", "--out", "o", *flags])
        assert result.exit_code != 0 and says in result.output and "Traceback" not in result.output, result.output


def test_pinned_teacher_keeps_card_and_weights_and_refuses_a_silent_swap(tiny_teacher, tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from vitfleet.bench.accuracy_ablation import app
    from vitfleet.decompose.checkpoints import save_weights

    folder, card = tiny_teacher
    pinned = tmp_path / "pinned"
    runner = CliRunner()
    done = runner.invoke(app, ["pin-teacher", str(folder), "--to", str(pinned)])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in pinned.iterdir()) == ["teacher.json", card.weights]
    model, pinned_card = load_teacher(pinned)
    assert pinned_card.weights_sha256 == card.weights_sha256
    # A retrain on a new machine that gives the same weights (its card differs only in its timing): the committed
    # card stays, the weights that did not outlive the old machine come back.
    committed = (pinned / "teacher.json").read_text()
    (pinned / card.weights).unlink()
    retrained = tmp_path / "retrained"
    shutil.copytree(folder, retrained)
    retrained_card = json.loads((retrained / "teacher.json").read_text())
    retrained_card["metrics"]["train_seconds"] = 1234.5
    (retrained / "teacher.json").write_text(json.dumps(retrained_card))
    again = runner.invoke(app, ["pin-teacher", str(retrained), "--to", str(pinned), "--replace"])
    assert again.exit_code == 0 and "bit for bit" in again.output, again.output
    assert (pinned / "teacher.json").read_text() == committed
    assert load_teacher(pinned)[1].weights_sha256 == card.weights_sha256  # the weights are back and check out

    other = tmp_path / "other"
    shutil.copytree(folder, other)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    changed = json.loads((other / "teacher.json").read_text())
    changed["weights_sha256"] = save_weights(model, other / card.weights)
    (other / "teacher.json").write_text(json.dumps(changed))
    refused = runner.invoke(app, ["pin-teacher", str(other), "--to", str(pinned)])
    assert refused.exit_code != 0 and "pass --replace" in refused.output
    assert load_teacher(pinned)[1].weights_sha256 == card.weights_sha256  # nothing was overwritten
    assert runner.invoke(app, ["pin-teacher", str(other), "--to", str(pinned), "--replace"]).exit_code == 0
    assert load_teacher(pinned)[1].weights_sha256 == changed["weights_sha256"]


def test_the_pinned_teacher_card_names_a_teacher_rows_were_cut_from() -> None:
    """The card is committed (the weights are not): it must name the teacher of recorded rows."""
    from vitfleet.bench.accuracy_ablation import PINNED_TEACHER
    from vitfleet.decompose.teacher import read_card

    root = Path(__file__).resolve().parents[1]
    card = read_card(root / PINNED_TEACHER)
    rows = json.loads((root / "bench/results/ablation.json").read_text())["rows"]
    assert card.weights_sha256 in {r.get("teacher_sha256") for r in rows}, "no recorded row is cut from it"


def test_devit_flips_pair_each_mirrored_image_with_the_teachers_targets_on_it(tiny_teacher, fmnist_slices) -> None:
    from vitfleet.decompose.students import mirrored_batch

    folder, card = tiny_teacher
    teacher, _ = load_teacher(folder)
    x, y = to_tensors(fmnist_slices[0].head(300), card.preprocessing)
    targets, flipped = compute_targets(teacher, x), compute_targets(teacher, x.flip(3))
    data = subset_data(x, y, [0, 3, 6], targets, other_fraction=0.5, flipped_targets=flipped)
    assert data.teacher_local_flipped is not None and data.teacher_rel_flipped is not None
    # The teacher's relations on a mirrored image are its own, not a copy of the original's.
    assert not torch.equal(data.teacher_rel_flipped, data.teacher_rel)
    idx = torch.arange(len(data.x))
    images, labels, relations = mirrored_batch(data, idx, torch.Generator().manual_seed(0))
    mirrored = (images == data.x.flip(3)).flatten(1).all(1)
    kept = (images == data.x).flatten(1).all(1)
    symmetric = (data.x == data.x.flip(3)).flatten(1).all(1)
    assert bool((mirrored | kept).all()) and 0.3 < float((mirrored & ~symmetric).float().mean()) < 0.7
    only_mirrored = mirrored & ~kept
    assert torch.equal(relations[only_mirrored], data.teacher_rel_flipped[only_mirrored])
    assert torch.equal(labels[only_mirrored], data.teacher_local_flipped[only_mirrored])
    assert torch.equal(relations[~mirrored], data.teacher_rel[~mirrored])
    assert torch.equal(labels[~mirrored], data.teacher_local[~mirrored])
    without = subset_data(x, y, [0, 3, 6], targets)
    with pytest.raises(ValueError, match="flipped images"):
        mirrored_batch(without, idx, torch.Generator())


def test_part_flips_resolve_per_method_and_edvit_can_train_without_them(tiny_teacher, fmnist_slices) -> None:
    from dataclasses import asdict

    from vitfleet.decompose.default_options import default_options, recipe_deviations
    from vitfleet.decompose.methods import get_method
    from vitfleet.decompose.part_training import train_part
    from vitfleet.decompose.pipeline import _recipe_key

    assert get_method("edvit").part_flips(PartRecipe()) and not get_method("devit").part_flips(PartRecipe())
    assert not get_method("edvit").part_flips(PartRecipe(flips=False))
    assert get_method("devit").part_flips(PartRecipe(flips=True))
    # Left to the method, the stage key is the one parts had before the setting existed (their caches stay valid).
    assert "flips" not in _recipe_key(PartRecipe()) and _recipe_key(PartRecipe(flips=True))["flips"] is True
    assert default_options("devit", 4).needs_flipped_targets() is False
    flipped = default_options("devit", 4, part_flips=True)
    assert flipped.needs_flipped_targets() and not default_options("edvit", 4, part_flips=True).needs_flipped_targets()
    assert recipe_deviations("devit", 4, json.loads(json.dumps(asdict(flipped), default=str))) == [
        "part_recipe.flips=True"
    ]

    folder, card = tiny_teacher
    teacher, _ = load_teacher(folder)
    x, y = to_tensors(fmnist_slices[0].head(400), card.preprocessing)
    data = subset_data(x, y, [0, 3, 6], None, other_fraction=0.25)
    asymmetric = ~(data.x == data.x.flip(3)).flatten(1).all(1)

    def seen_images(flips: bool) -> torch.Tensor:
        from vitfleet.decompose.pipeline import _derive_part

        opts = DecomposeOptions(method="edvit", parts=3, part_budget=0.3)
        model = _derive_part(teacher, x, y, [0, 3, 6], opts, int(count_params(teacher) * 0.3))
        seen: list[torch.Tensor] = []
        hook = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
        train_part(model, data, "edvit", PartRecipe(epochs=1, batch_size=64, flips=flips), max_steps=3)
        hook.remove()
        return torch.cat(seen)

    def mirrored_count(images: torch.Tensor) -> int:
        flat_x, flat_m = data.x[asymmetric].flatten(1), data.x[asymmetric].flip(3).flatten(1)
        return sum(
            bool((flat_m == im.flatten()).all(1).any()) and not bool((flat_x == im.flatten()).all(1).any())
            for im in images
        )

    assert mirrored_count(seen_images(flips=False)) == 0
    assert mirrored_count(seen_images(flips=True)) > 30  # about half of 3 x 64 images


def test_devit_students_with_flips_learn_from_the_teachers_flipped_targets(tiny_teacher, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vitfleet.cli import app

    folder, card = tiny_teacher
    bundle = decompose_teacher(
        folder,
        tmp_path,
        DecomposeOptions(
            method="devit",
            parts=3,
            part_budget=0.3,
            part_recipe=PartRecipe(epochs=1, batch_size=64, flips=True),
            **FAST,
        ),
    )
    assert bundle.recipe is not None and bundle.recipe["part_recipe"]["flips"] is True
    assert len(list((tmp_path / "cache").glob("targets-*-flipped.safetensors"))) == 1
    assert bundle.metrics["fused_top1"] > 0.4, bundle.metrics
    for i in range(3):
        meta = json.loads((tmp_path / f"part{i}.json").read_text())
        assert meta["last_loss"] < meta["first_loss"], meta
    help_text = CliRunner().invoke(app, ["decompose", "--help"], terminal_width=200).output
    assert "--part-flips" in help_text and "--no-part-flips" in help_text


def test_flip_relations_measure_how_far_a_mirrored_target_is(tiny_teacher) -> None:
    from vitfleet.bench.flip_relations import measure, mirror_permutation

    assert mirror_permutation(3, 1) == [0, 3, 2, 1, 6, 5, 4, 9, 8, 7]
    folder, _card = tiny_teacher
    kl = measure(folder, images=64)
    assert kl["kl_flipped_vs_itself"] == pytest.approx(0.0, abs=1e-5)
    assert min(kl["kl_mirrored_original"], kl["kl_unmirrored_original"], kl["kl_other_image"]) > 0.0
    assert kl["images"] == 64 and kl["tokens"] == 17  # CLS + 4 x 4 patches of the tiny preset
