"""`vitfleet engines build | check | latency`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vitfleet.choices import Backend, BuildPrecision, EnginePrecision, Target
from vitfleet.console import emit, emit_rows, err_console, progress_bar, user_errors
from vitfleet.errors import UserError

app = typer.Typer(
    help="Compile a bundle into engines for a board, check them against PyTorch, time them.",
    no_args_is_help=True,
    add_completion=False,
)
Json = Annotated[bool, typer.Option("--json", help="print figures as JSON")]
DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="data folder (default: $VITFLEET_DATA or the Debian package's folder)"),
]
PRECISION_HELP = "fp32, fp16, int8 (symmetric QDQ, calibrated on training images) or all (fp16 + int8)"


@app.command("build")
@user_errors
def build_cmd(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "--engines",
            help="engines folder to write (for --backend tensorrt without --bundle: the folder to add plans to)",
        ),
    ] = Path("runs/engines"),
    bundle: Annotated[Path | None, typer.Option(help="bundle folder (from vitfleet decompose)")] = None,
    target: Annotated[Target, typer.Option(case_sensitive=False, help="cpu, pi or jetson")] = Target.cpu,
    precision: Annotated[BuildPrecision, typer.Option(case_sensitive=False, help=PRECISION_HELP)] = BuildPrecision.int8,
    backend: Annotated[
        Backend, typer.Option(case_sensitive=False, help="onnxruntime (any machine) or tensorrt (on the Jetson)")
    ] = Backend.onnxruntime,
    calib_images: Annotated[int, typer.Option(min=1, help="training images used to calibrate int8")] = 256,
    dynamic_batch: Annotated[
        bool, typer.Option(help="export with a dynamic batch axis (default: static batch 1)")
    ] = False,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Export the bundle's parts, fusion head and teacher to ONNX, make the requested precision, write
    manifest.json; with --backend tensorrt also build TensorRT plans (on a Jetson)."""
    target, precision, backend = target.value, precision.value, backend.value  # plain strings from here on
    summary: dict = {"out": str(out), "target": target, "precision": precision}
    if bundle is not None:
        # The ONNX side is the workstation's: a board (a Jetson building TensorRT plans) has no bundle code.
        from vitfleet.engines.build.from_bundle import build_engines

        with progress_bar(disable=as_json) as progress:
            manifest = build_engines(
                bundle,
                out,
                precision,
                "jetson" if backend == "tensorrt" else target,
                calib_images,
                progress,
                data_dir=data_dir,
                dynamic_batch=dynamic_batch,
            )
        summary["files"] = [e.file for e in manifest.entries]
    elif backend == "onnxruntime":
        raise UserError(
            "give --bundle DIR (the bundle to compile); only --backend tensorrt works from an existing engines folder"
        )
    if backend == "tensorrt":
        from vitfleet.engines.tensorrt_build import build_tensorrt_engines

        results = build_tensorrt_engines(out, precision, log=lambda m: err_console.print(m, highlight=False))
        summary["plans"] = [{"file": r.entry.file, "rebuilt": r.rebuilt, "reason": r.reason} for r in results]
    emit(summary, as_json, title="engines build")


@app.command("check")
@user_errors
def check_cmd(
    engines_dir: Annotated[Path, typer.Argument(help="engines folder (with manifest.json)")],
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="the bundle the engines were built from (default: the reference.npz a --target jetson build saved)"
        ),
    ] = None,
    images: Annotated[int, typer.Option(min=1, help="test images to compare on")] = 1000,
    backend: Annotated[
        Backend, typer.Option(case_sensitive=False, help="onnxruntime or tensorrt")
    ] = Backend.onnxruntime,
    precision: Annotated[
        EnginePrecision | None, typer.Option(case_sensitive=False, help="precision to check (default: the folder's)")
    ] = None,
    threads: Annotated[int, typer.Option(min=1)] = 1,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Run every engine and the fused pipeline against the PyTorch bundle; exit 1 below the thresholds."""
    from vitfleet.engines.check import check_engines

    report = check_engines(
        engines_dir,
        bundle,
        images,
        data_dir,
        backend.value,
        precision.value if precision is not None else None,
        threads,
    )
    if as_json:
        emit(report, True)
    else:
        emit_rows([{k: v for k, v in p.items()} for p in report["parts"]], False, title="per-part features")
        emit({k: v for k, v in report.items() if k not in ("parts", "failures")}, False, title="fused")
        for failure in report["failures"]:
            err_console.print(f"[bold red]FAIL[/] {failure}", highlight=False)
    if not report["pass"]:
        raise typer.Exit(1)


@app.command("latency")
@user_errors
def latency_cmd(
    engines_dir: Annotated[Path, typer.Argument(help="engines folder (with manifest.json)")],
    threads: Annotated[int, typer.Option(min=1, help="ONNX Runtime intra-op threads")] = 1,
    runs: Annotated[int, typer.Option(min=1, help="timed runs per file (the median is reported)")] = 200,
    warmup: Annotated[int, typer.Option(min=0)] = 20,
    backend: Annotated[
        Backend, typer.Option(case_sensitive=False, help="onnxruntime or tensorrt")
    ] = Backend.onnxruntime,
    as_json: Json = False,
) -> None:
    """Median batch-1 latency of every file in the manifest (parts, fusion head, teacher)."""
    from vitfleet.engines.runtime.latency import measure_latency

    emit_rows(measure_latency(engines_dir, threads, runs, warmup, backend.value), as_json, title="latency (ms)")
