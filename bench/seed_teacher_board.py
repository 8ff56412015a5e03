"""The teacher as one board: an engines folder of one "part" -- the whole teacher, at the parts' precision -- and an
identity fusion head, so an ordinary agent runs the teacher through the same camera node, broker, link and
aggregator as the fleets it is compared with (the measured speedup divides like by like).

part0.<precision>.onnx  the teacher's own ONNX export (the same file the isolated timing runs), logits as features
fusion.onnx             logits * mask: the aggregator's fusion step with nothing to fuse (a few µs)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vitfleet.engines.build.from_bundle import onnx_entry
from vitfleet.engines.runtime.manifest import Manifest, write_manifest
from vitfleet.file_digest import sha256_file

FUSION = "fusion.onnx"


def identity_fusion(path: Path, num_classes: int) -> None:
    """An fp32 ONNX graph: (features [1, C], mask [1, 1]) -> logits = features * mask."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["features", "mask"], ["logits"])],
        "teacher_board_fusion",
        [
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, num_classes]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, num_classes])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)  # the teacher is ~90-350 MB: a hard link when the folder is on the same file system
    except OSError:
        shutil.copy2(src, dst)


def teacher_board_engines(teacher_dir: Path, teacher_onnx: Path, precision: str, out_dir: Path) -> Path:
    """`out_dir` holding the teacher as a one-part fleet (rebuilt when the teacher's ONNX changed)."""
    from vitfleet.decompose.teacher import read_card

    card = read_card(teacher_dir)
    part_file = f"part0.{precision}.onnx" if precision != "fp32" else "part0.onnx"
    source_sha = sha256_file(teacher_onnx)
    manifest_path = out_dir / "manifest.json"
    if manifest_path.exists() and f'"sha256": "{source_sha}"' in manifest_path.read_text():
        return out_dir  # already this teacher's file
    out_dir.mkdir(parents=True, exist_ok=True)
    _link_or_copy(teacher_onnx, out_dir / part_file)
    num_classes = len(card.class_names)
    identity_fusion(out_dir / FUSION, num_classes)
    part = onnx_entry(out_dir, part_file, "part", 0, precision, None, card.weights_sha256)
    fusion = onnx_entry(out_dir, FUSION, "fusion", None, "fp32", None, None)
    manifest = Manifest(
        bundle_id=f"teacher-board-{card.weights_sha256[:12]}-{precision}",
        method="teacher",
        class_names=card.class_names,
        preprocessing=card.preprocessing,
        dataset=card.dataset,
        num_parts=1,
        feature_dims=[num_classes],
        target="cpu",
        precision=precision,  # type: ignore[arg-type]
        entries=[part, fusion],
    )
    write_manifest(out_dir, manifest)
    return out_dir
