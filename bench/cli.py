"""`vitfleet bench`: the whole benchmark report in one command (`make bench`, `make bench QUICK=1`);
`vitfleet bench loadgen`: MLPerf LoadGen scenarios on a local fleet (bench/loadgen.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vitfleet.console import user_errors

# A group whose callback is the whole report, so `vitfleet bench [OPTIONS]` runs as before and subcommands sit beside.
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.callback(invoke_without_command=True)
@user_errors
def bench(
    ctx: typer.Context,
    teacher: Annotated[
        Path | None,
        typer.Option(help="trained teacher folder (full run); quick mode trains a tiny one when omitted"),
    ] = None,
    runs: Annotated[
        Path | None,
        typer.Option(
            help="work dir: bundle-<method>-<K>/ are reused from here, missing ones and engines are made here"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="results folder (results.json + PNG plots)")] = None,
    report: Annotated[Path | None, typer.Option(help="Markdown file whose bench section is rewritten")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="tiny teacher/bundles, few images and runs: minutes")] = False,
    parts: Annotated[str | None, typer.Option(help="fleet sizes K, comma-separated (default 2,4)")] = None,
    methods: Annotated[str | None, typer.Option(help="devit,edvit (default both)")] = None,
    test_images: Annotated[int | None, typer.Option(help="test images for accuracy (default: all)")] = None,
    latency_runs: Annotated[int | None, typer.Option(help="timed runs per engine (default 300)")] = None,
    train_limit: Annotated[
        int | None, typer.Option(help="training images for bundles the bench decomposes itself (default 30000)")
    ] = None,
    part_epochs: Annotated[
        int | None, typer.Option(help="part epochs for bundles the bench decomposes (default 4)")
    ] = None,
    compact_epochs: Annotated[int | None, typer.Option(help="epochs of the compact single model (default 7)")] = None,
    render_only: Annotated[
        bool, typer.Option("--render-only", help="only redraw the plots and rewrite the report from OUT/results.json")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the results JSON on stdout")] = False,
) -> None:
    """Benchmark teacher vs compact model vs DeViT/ED-ViT fleets (K=2,4; fp32/int8) and write the report."""
    if ctx.invoked_subcommand is not None:
        return
    import sys

    from vitfleet.bench.settings import BenchSettings, quick_settings
    from vitfleet.console import err_console, progress_bar

    given = {
        k: v
        for k, v in dict(
            teacher=teacher,
            runs=runs,
            out=out,
            report=report,
            test_images=test_images,
            latency_runs=latency_runs,
            train_limit=train_limit,
            part_epochs=part_epochs,
            compact_epochs=compact_epochs,
        ).items()
        if v is not None
    }
    if parts:
        given["parts"] = [int(p) for p in parts.split(",")]
    if methods:
        given["methods"] = [m.strip() for m in methods.split(",")]
    given["command"] = "vitfleet " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "vitfleet bench"
    try:
        settings = quick_settings(**given) if quick else BenchSettings.model_validate(given)
    except ValueError as exc:
        from vitfleet.bench.preparation import BenchInputError

        raise BenchInputError(f"bad option: {exc}") from None
    from vitfleet.bench.publish import publish
    from vitfleet.bench.runner import Bench

    if render_only:
        from vitfleet.bench.preparation import BenchInputError

        saved = settings.out / "results.json"
        if not saved.exists():
            raise BenchInputError(f"{saved} not found; run the benchmark first (without --render-only)")
        results = json.loads(saved.read_text())
    else:
        with progress_bar(disable=as_json) as progress:
            results = Bench(settings, progress, log=lambda m: err_console.print(f"[bold]bench:[/] {m}")).run()
    paths = publish(results, settings)
    if as_json:
        sys.stdout.write(json.dumps(results, indent=2, default=str) + "\n")
    else:
        err_console.print(
            f"bench done in {results['duration_s'] / 60:.1f} min: {paths['results']}, "
            f"report section in {settings.report}"
        )


@app.command("loadgen")
@user_errors
def loadgen(
    scenario: Annotated[
        str | None,
        typer.Option(help="singlestream (p90 latency), multistream (p99 per-query latency) or offline (samples/s)"),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="performance, or accuracy (every library image once, scored against the labels and the fp32 reference)"
        ),
    ] = "performance",
    engines: Annotated[
        Path | None,
        typer.Option(help="engines folder (default: the demo bundle's int8 engines, built once under runs/demo)"),
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="bundle folder: int8 engines are built from it without --engines; checked against --engines with it"
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option(help="images in the sample library: the first N of the test split (default: all)")
    ] = None,
    min_duration: Annotated[float | None, typer.Option(help="LoadGen min duration, seconds (default 10)")] = None,
    min_queries: Annotated[
        int | None,
        typer.Option(help="LoadGen min query count (default: singlestream 1024, multistream 662, offline 1)"),
    ] = None,
    max_duration: Annotated[float, typer.Option(help="LoadGen max duration, seconds")] = 120.0,
    samples_per_query: Annotated[int, typer.Option(help="MultiStream samples per query (MLPerf edge: 8)")] = 8,
    expected_latency_ms: Annotated[
        float, typer.Option(help="expected latency per sample (sizes LoadGen's query schedule)")
    ] = 0.5,
    expected_qps: Annotated[
        float,
        typer.Option(
            help="Offline: expected samples/s; its one query holds 1.1 x this x "
            "min duration samples; more than the fleet does, or the run "
            "ends before min duration (INVALID)"
        ),
    ] = 400.0,
    max_in_flight: Annotated[
        int, typer.Option(help="the camera's admission credits (frames in the fleet at once)")
    ] = 2,
    encoding: Annotated[str, typer.Option(help="frames on the wire: raw or jpeg")] = "raw",
    out: Annotated[
        Path | None,
        typer.Option(
            help="report JSON (default bench/results/loadgen-<scenario>"
            "[-accuracy].json); LoadGen's logs go to loadgen/<name>/ "
            "beside it"
        ),
    ] = None,
    work_dir: Annotated[Path, typer.Option(help="the fleet's run folder (logs, fleet.yaml)")] = Path("runs/loadgen"),
    docs: Annotated[
        Path | None,
        typer.Option(
            help="rewrite this Markdown file's LoadGen section from every loadgen-*.json in the report's folder"
        ),
    ] = None,
    render_only: Annotated[
        bool, typer.Option("--render-only", help="only rewrite the --docs section, run nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report JSON on stdout")] = False,
) -> None:
    """MLPerf LoadGen drives a local fleet through its camera path (SingleStream, MultiStream, Offline)."""
    import sys

    from pydantic import ValidationError

    from vitfleet.bench.loadgen import check_options
    from vitfleet.bench.loadgen_settings import LoadgenInputError, LoadgenSettings

    results = out.parent if out else Path("bench/results")
    if render_only:
        if docs is None:
            raise LoadgenInputError("--render-only rewrites a docs section; pass --docs FILE (e.g. docs/benchmarks.md)")
        _render_docs(results, docs)
        return
    check_options(scenario, mode)
    try:
        settings = LoadgenSettings(
            scenario=scenario,
            mode=mode,
            engines=engines,
            bundle=bundle,
            count=count,
            min_duration_s=min_duration,
            min_queries=min_queries,
            max_duration_s=max_duration,
            samples_per_query=samples_per_query,
            expected_latency_ms=expected_latency_ms,
            expected_qps=expected_qps,
            max_in_flight=max_in_flight,
            encoding=encoding,
            out=out,
            work_dir=work_dir,
            command="vitfleet " + " ".join(sys.argv[1:]),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = "--" + str(err["loc"][0]).removesuffix("_s").replace("_", "-") if err["loc"] else "an option"
        raise LoadgenInputError(f"bad value for {flag}: {err['msg']}; see `vitfleet bench loadgen --help`") from None
    from vitfleet.bench.loadgen import run_loadgen
    from vitfleet.bench.loadgen_report import print_report

    report = run_loadgen(settings)
    if docs is not None:
        _render_docs(settings.report_path.parent, docs)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        print_report(report)
    if not report["ok"]:
        raise typer.Exit(1)


def _render_docs(results: Path, docs: Path) -> None:
    from vitfleet.bench.loadgen_report import render_section, write_section

    write_section(docs, render_section(results, Path.cwd()))
