"""`vitfleet bench`: the whole benchmark report in one command (`make bench`, `make bench QUICK=1`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vitfleet.console import user_errors


@user_errors
def bench(
    teacher: Annotated[Optional[Path], typer.Option(help="trained teacher folder (full run); quick mode trains a "
                                                         "tiny one when omitted")] = None,
    runs: Annotated[Optional[Path], typer.Option(help="work dir: bundle-<method>-<K>/ are reused from here, missing "
                                                      "ones and engines are made here")] = None,
    out: Annotated[Optional[Path], typer.Option(help="results folder (results.json + PNG plots)")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Markdown file whose bench section is rewritten")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="tiny teacher/bundles, few images and runs: minutes")] = False,
    parts: Annotated[Optional[str], typer.Option(help="fleet sizes K, comma-separated (default 2,4)")] = None,
    methods: Annotated[Optional[str], typer.Option(help="devit,edvit (default both)")] = None,
    test_images: Annotated[Optional[int], typer.Option(help="test images for accuracy (default: all)")] = None,
    latency_runs: Annotated[Optional[int], typer.Option(help="timed runs per engine (default 300)")] = None,
    train_limit: Annotated[Optional[int], typer.Option(help="training images for bundles the bench decomposes "
                                                           "itself (default 30000)")] = None,
    part_epochs: Annotated[Optional[int], typer.Option(help="part epochs for bundles the bench decomposes (default 4)")] = None,
    compact_epochs: Annotated[Optional[int], typer.Option(help="epochs of the compact single model (default 7)")] = None,
    render_only: Annotated[bool, typer.Option("--render-only", help="only redraw the plots and rewrite the report "
                                                                     "from OUT/results.json")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the results JSON on stdout")] = False,
) -> None:
    """Benchmark teacher vs compact model vs DeViT/ED-ViT fleets (K=2,4; fp32/int8) and write the report."""
    import sys

    from vitfleet.bench.settings import BenchSettings, quick_settings
    from vitfleet.console import err_console, progress_bar

    given = {k: v for k, v in dict(teacher=teacher, runs=runs, out=out, report=report, test_images=test_images,
                                    latency_runs=latency_runs, train_limit=train_limit,
                                    part_epochs=part_epochs, compact_epochs=compact_epochs).items() if v is not None}
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
        err_console.print(f"bench done in {results['duration_s'] / 60:.1f} min: {paths['results']}, "
                          f"report section in {settings.report}")
