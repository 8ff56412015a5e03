"""`build_engines`: bundle -> ONNX (parts, fusion head, teacher) -> the requested precision -> manifest.json.

Files (static batch 1 unless dynamic_batch):
  part{i}.onnx        fp32 export, the source of everything else (and of fp16 TensorRT plans)
  part{i}.fp16.onnx   fp16 for ONNX Runtime (float32 I/O)
  part{i}.int8.onnx   symmetric QDQ int8: ONNX Runtime on a Pi/CPU, and the input of int8 TensorRT plans
  reference.npz       (target jetson) test images + PyTorch features/logits for the board-side check
  fusion.onnx         the fusion head, kept fp32: it is small, runs on the aggregator, and int8 there buys nothing
  teacher.onnx        the teacher, fp32, only for the benchmark's size/latency comparison
  part{i}.<onnx-sha8>.<precision>.trt<M.m>.sm<cc>.engine   TensorRT plans (target jetson, built on the board)
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.progress import Progress

from vitfleet.choices import Target, choice_values
from vitfleet.decompose.bundle import BundleCard, read_bundle
from vitfleet.engines.build.calibration import bundle_images
from vitfleet.engines.build.onnx_io import io_specs
from vitfleet.engines.build.precision import Int8Settings, to_fp16, to_int8
from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import PRECISIONS, EngineEntry, Manifest, write_manifest
from vitfleet.file_digest import sha256_file

TARGETS = choice_values(Target)


def onnx_entry(
    folder: Path,
    file: str,
    role: str,
    part: int | None,
    precision: str,
    source_onnx_sha256: str | None,
    source_weights_sha256: str | None,
) -> EngineEntry:
    path = folder / file
    inputs, outputs = io_specs(path)
    return EngineEntry(
        role=role,
        part=part,
        precision=precision,
        backend="onnxruntime",
        file=file,
        size=path.stat().st_size,
        sha256=sha256_file(path),
        source_onnx_sha256=source_onnx_sha256,
        source_weights_sha256=source_weights_sha256,
        inputs=inputs,
        outputs=outputs,
    )


def resolve_teacher(bundle_dir: Path, card: BundleCard) -> Path | None:
    """The teacher folder the card names (absolute, or relative to the bundle or the working directory)."""
    given = Path(card.teacher.path)
    for candidate in [given] if given.is_absolute() else [bundle_dir / given, given]:
        if (candidate / "teacher.json").exists():
            return candidate
    return None


def _still_valid(out_dir: Path, bundle_id: str, fresh: list[EngineEntry]) -> list[EngineEntry]:
    """Entries of an earlier build into the same folder (another precision, TensorRT plans) that were made
    from the very ONNX just exported again and whose files are intact: kept, so building int8 then fp16 into
    one folder leaves both usable. Anything else is dropped from the manifest."""
    from vitfleet.engines.runtime.manifest import read_manifest, verified_path

    try:
        old = read_manifest(out_dir)
    except EngineError:
        return []
    if old.bundle_id != bundle_id:
        return []
    sources = {e.sha256 for e in fresh if e.precision == "fp32"}
    taken = {(e.role, e.part, e.precision, e.backend) for e in fresh}
    kept = []
    for e in old.entries:
        if (e.role, e.part, e.precision, e.backend) in taken or e.source_onnx_sha256 not in sources:
            continue
        try:
            verified_path(out_dir, e)
        except EngineError:
            continue
        kept.append(e)
    return kept


def build_engines(
    bundle_dir: Path,
    out_dir: Path,
    precision: str = "int8",
    target: str = "cpu",
    calib_images: int = 256,
    progress: Progress | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    dynamic_batch: bool = False,
    int8: Int8Settings = Int8Settings(),
    export_teacher: bool = True,
    reference_images: int = 1000,
) -> Manifest:
    import torch

    from vitfleet.decompose.bundle import load_fusion, load_part
    from vitfleet.engines.build import export

    if precision not in PRECISIONS + ("all",):
        raise EngineError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)} or all")
    # "all": fp16 and int8 files side by side (for latency tables); agents default to int8.
    made = ["fp16", "int8"] if precision == "all" else [p for p in (precision,) if p != "fp32"]
    default_precision = "int8" if precision == "all" else precision
    if target not in TARGETS:
        raise EngineError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    card = read_bundle(bundle_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pre = card.preprocessing
    image_shape = (pre.channels, pre.size, pre.size)
    teacher_dir = resolve_teacher(bundle_dir, card) if export_teacher else None
    steps = card.num_parts * (1 + len(made)) + 1 + (teacher_dir is not None)
    task = progress.add_task(f"engines {target} {precision}", total=steps) if progress else None

    def advance(what: str) -> None:
        if progress is not None:
            progress.update(task, advance=1, description=f"engines: {what}")

    calibration = None
    if "int8" in made:
        calibration, _ = bundle_images(card, "train", calib_images, data_dir)
    entries: list[EngineEntry] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # export traces tiny graphs; extra threads only contend
    try:
        for spec in card.parts:
            i = spec.index
            exported = export.export_part(
                load_part(bundle_dir, i, card), image_shape, out_dir / f"part{i}.onnx", card.bundle_id, i, dynamic_batch
            )
            fp32 = onnx_entry(out_dir, exported.path.name, "part", i, "fp32", None, spec.weights_sha256)
            entries.append(fp32)
            advance(f"part {i} exported")
            for p in made:
                if p == "fp16":
                    to_fp16(exported.path, out_dir / f"part{i}.fp16.onnx")
                else:
                    to_int8(exported.path, out_dir / f"part{i}.int8.onnx", calibration, int8, target)
                entries.append(onnx_entry(out_dir, f"part{i}.{p}.onnx", "part", i, p, fp32.sha256, spec.weights_sha256))
                advance(f"part {i} {p}")
        fusion = export.export_fusion(
            load_fusion(bundle_dir, card),
            card.fusion.feature_dims,
            out_dir / "fusion.onnx",
            card.bundle_id,
            dynamic_batch,
        )
        entries.append(onnx_entry(out_dir, fusion.path.name, "fusion", None, "fp32", None, card.fusion.weights_sha256))
        advance("fusion exported")
        if teacher_dir is not None:
            from vitfleet.decompose.teacher import load_teacher

            teacher, tcard = load_teacher(teacher_dir)
            exported = export.export_teacher(
                teacher, image_shape, out_dir / "teacher.onnx", card.bundle_id, dynamic_batch
            )
            entries.append(onnx_entry(out_dir, exported.path.name, "teacher", None, "fp32", None, tcard.weights_sha256))
            advance("teacher exported")
    finally:
        torch.set_num_threads(threads)
    entries += _still_valid(out_dir, card.bundle_id, entries)
    manifest = Manifest(
        bundle_id=card.bundle_id,
        method=card.method,
        class_names=card.class_names,
        preprocessing=pre,
        dataset=card.dataset,
        num_parts=card.num_parts,
        feature_dims=[p.feature_dim for p in card.parts],
        target=target,
        precision=default_precision,
        entries=entries,
    )
    write_manifest(out_dir, manifest)
    if target == "jetson":  # the board checks its plans against these PyTorch outputs, without torch
        from vitfleet.engines.reference import write_reference

        write_reference(bundle_dir, out_dir, reference_images, data_dir)
    return manifest
