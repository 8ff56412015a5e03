"""What a `vitfleet bench loadgen` run reports: LoadGen's own logs read back, accuracy scored from LoadGen's accuracy
log, the report JSON, and the "LoadGen (MLPerf)" section of docs/benchmarks.md generated from those JSONs.

Figures come from LoadGen's files, not from our own clocks: `mlperf_log_detail.txt` (one `:::MLLOG {json}` line per
key: validity, percentiles, samples/s) and `mlperf_log_accuracy.json` (per sample: its QSL index and the response
bytes, here the predicted class as int32), so the report says what an MLPerf reader would compute from them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from vitfleet.bench.loadgen_settings import LoadgenSettings
    from vitfleet.bench.loadgen_sut import SutCounts

REQUIRED_OF_FP32 = 0.99  # MLPerf edge image classification: >= 99 % of the fp32 reference accuracy
SECTION_START, SECTION_END = "<!-- loadgen:start -->", "<!-- loadgen:end -->"
METRIC = {"singlestream": "p90 latency", "multistream": "p99 per-query latency", "offline": "samples/s"}
# The detail-log key MLPerf's submission checker takes as each scenario's result: for the latency scenarios the
# early-stopping estimate of the percentile (an upper bound that accounts for the number of queries run), which is
# above the plain percentile of a short run.
SCENARIO_ORDER = ("singlestream", "multistream", "offline")
RESULT_KEY = {
    "singlestream": "early_stopping_latency_ss",
    "multistream": "early_stopping_latency_ms",
    "offline": "result_samples_per_second",
}
CAMERA_FIGURES = (
    "admitted",
    "predictions",
    "lost",
    "answered_late",
    "degraded",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "answered_fps",
)


class LoadgenLogError(RuntimeError):
    """LoadGen's logs are missing or do not say what a finished run writes (a crashed or interrupted run)."""


def read_detail(path: Path) -> dict[str, Any]:
    """`:::MLLOG {"key": ..., "value": ...}` lines -> {key: value} (the last value of a repeated key)."""
    if not path.exists():
        raise LoadgenLogError(f"{path} was not written: LoadGen did not finish the run")
    out: dict[str, Any] = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(":::MLLOG "):
            entry = json.loads(line[len(":::MLLOG ") :])
            out[entry["key"]] = entry["value"]
    if "result_validity" not in out and "effective_scenario" not in out:
        raise LoadgenLogError(f"{path} holds no LoadGen settings or result: the run did not finish")
    return out


def read_summary(path: Path) -> dict[str, str]:
    """mlperf_log_summary.txt's `name : value` lines -> {name: value} (the human-readable twin of the detail log)."""
    if not path.exists():
        raise LoadgenLogError(f"{path} was not written: LoadGen did not finish the run")
    out: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and not name.startswith(" *"):
            out.setdefault(name.strip(), value.strip())
    return out


def read_accuracy_log(path: Path) -> dict[int, int]:
    """mlperf_log_accuracy.json -> {QSL index: predicted class} (the response bytes are one little-endian int32)."""
    entries = json.loads(path.read_text())
    return {int(e["qsl_idx"]): int(np.frombuffer(bytes.fromhex(e["data"]), "<i4")[0]) for e in entries}


def score(predicted: dict[int, int], labels: np.ndarray) -> dict[str, Any]:
    """Accuracy over the whole library: an image LoadGen never logged counts as wrong."""
    correct = sum(int(predicted.get(i, -1) == int(label)) for i, label in enumerate(labels))
    return {
        "images": int(len(labels)),
        "scored": len(predicted),
        "correct": correct,
        "accuracy": round(correct / len(labels), 5),
    }


def _ms(ns: float | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def _percentiles(detail: dict[str, Any], kind: str) -> dict[str, float | None]:
    return {f"p{p}": _ms(detail.get(f"result_{p}.00_percentile_{kind}latency_ns")) for p in (50, 90, 99)}


def loadgen_result(detail: dict[str, Any], summary: dict[str, str]) -> dict[str, Any]:
    """VALID/INVALID and why, in LoadGen's own words."""
    why = []
    for key, text in (
        ("result_min_duration_met", "min duration not met"),
        ("result_min_queries_met", "min query count not met"),
        ("early_stopping_met", "early stopping not met"),
    ):
        if detail.get(key) is False:
            why.append(text)
    if detail.get("early_stopping_met") is False and detail.get("early_stopping_result"):
        why.append(" ".join(detail["early_stopping_result"].replace("*", "").split()))
    if detail.get("result_invalid_reason"):
        why.append(str(detail["result_invalid_reason"]))
    return {
        "validity": detail.get("result_validity"),
        "why": why,
        "version": detail.get("loadgen_version"),
        "summary_result": summary.get("Result is"),
        "errors": detail.get("num_errors"),
        "early_stopping": " ".join(str(detail.get("early_stopping_result", "")).replace("*", "").split()) or None,
        "query_count": detail.get("result_query_count"),
        "samples_per_query": detail.get("effective_samples_per_query"),
        "min_duration_ms": detail.get("effective_min_duration_ms"),
        "min_query_count": detail.get("effective_min_query_count"),
        "max_duration_ms": detail.get("effective_max_duration_ms"),
    }


def mlperf_result(scenario: str, detail: dict[str, Any]) -> dict[str, Any] | None:
    """The scenario's result as MLPerf states it (None for an accuracy run, which has no performance result)."""
    value = detail.get(RESULT_KEY[scenario])
    if value is None:
        return None
    if scenario == "offline":
        return {"key": RESULT_KEY[scenario], "value": value, "unit": "samples/s"}
    return {"key": RESULT_KEY[scenario], "value": _ms(value), "unit": "ms"}


def _samples_per_second(scenario: str, detail: dict[str, Any]) -> float | None:
    if scenario == "offline":
        return detail.get("result_samples_per_second")
    qps = detail.get("result_qps_with_loadgen_overhead")  # queries/s; a MultiStream query is N samples
    return None if qps is None else round(qps * (detail.get("effective_samples_per_query") or 1), 3)


def build_report(
    s: LoadgenSettings,
    engines: Path,
    uri: str,
    labels: np.ndarray,
    counts: SutCounts,
    camera: dict[str, Any],
    fp32: float | None,
    started: dt.datetime,
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    from vitfleet.bench.machine import machine_facts
    from vitfleet.engines.runtime.manifest import read_manifest

    manifest = read_manifest(engines)
    files = {name: s.log_dir / f"mlperf_log_{name}" for name in ("summary.txt", "detail.txt", "accuracy.json")}
    trace = s.log_dir / "mlperf_log_trace.json"
    if trace.exists() and trace.stat().st_size == 0:
        trace.unlink()  # written empty with tracing off: nothing to keep
    detail, summary = read_detail(files["detail.txt"]), read_summary(files["summary.txt"])
    result = loadgen_result(detail, summary)
    accuracy = None
    if s.mode == "accuracy":
        scored = score(read_accuracy_log(files["accuracy.json"]), labels)
        ratio = None if not fp32 else round(scored["accuracy"] / fp32, 5)
        accuracy = {
            **scored,
            "fp32_reference": round(fp32, 5) if fp32 is not None else None,
            "fp32_reference_source": "the bundle's fp32 ONNX engines, offline on the same images",
            "of_fp32": ratio,
            "required_of_fp32": REQUIRED_OF_FP32,
            "pass": ratio is not None and ratio >= REQUIRED_OF_FP32,
        }
    every_sample = counts.completed == counts.issued and counts.lost == 0
    ok = every_sample and (accuracy["pass"] if accuracy else result["validity"] == "VALID")
    return {
        "scenario": s.scenario,
        "mode": s.mode,
        "ok": ok,
        "metric": METRIC[s.scenario],
        "loadgen": result,
        "mlperf_result": mlperf_result(s.scenario, detail) if s.mode == "performance" else None,
        "latency_ms": _percentiles(detail, ""),  # per sample (Offline: from the start of its one query)
        "query_latency_ms": _percentiles(detail, "per_query_") if s.scenario == "multistream" else None,
        "samples_per_second": _samples_per_second(s.scenario, detail),
        "accuracy": accuracy,
        "sut": {k: v for k, v in vars(counts).items() if k != "predicted"},
        "camera": {k: camera.get(k) for k in CAMERA_FIGURES},
        "fleet": {
            "engines": str(engines),
            "bundle_id": manifest.bundle_id,
            "method": manifest.method,
            "parts": manifest.num_parts,
            "precision": manifest.precision,
            "dataset": manifest.dataset,
            "library": uri,
            "library_size": int(len(labels)),
            "max_in_flight": s.max_in_flight,
            "encoding": s.encoding,
            "broker": "private mosquitto on loopback",
        },
        "machine": {
            **machine_facts(),
            "load_avg_at_start": [round(x, 2) for x in load_before],
            "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "date": started.isoformat(timespec="seconds"),
        "command": s.command,
        "files": {
            "summary": str(files["summary.txt"]),
            "detail": str(files["detail.txt"]),
            "accuracy": str(files["accuracy.json"]),
        },
        "report": str(s.report_path),
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def print_report(r: dict[str, Any]) -> None:
    lg, lat, acc, sut = r["loadgen"], r["query_latency_ms"] or r["latency_ms"], r["accuracy"], r["sut"]
    fleet = r["fleet"]
    print(
        f"LoadGen {lg['version']} {r['scenario']} {r['mode']}: {fleet['method']} K={fleet['parts']} "
        f"{fleet['precision']}, {fleet['library_size']} images, CPU {r['machine']['cpu']}"
    )
    if r["mode"] == "performance":
        why = f" ({'; '.join(lg['why'])})" if lg["why"] else ""
        res = r["mlperf_result"] or {}
        print(
            f"  result {lg['validity']}{why}; {lg['query_count']} queries; MLPerf result ({res.get('key')}) "
            f"{res.get('value')} {res.get('unit')}"
        )
        print(
            f"  latency p50 {_fmt(lat['p50'])} ms, p90 {_fmt(lat['p90'])} ms, p99 {_fmt(lat['p99'])} ms"
            f"{' (per query)' if r['query_latency_ms'] else ''}; {_fmt(r['samples_per_second'], 1)} samples/s"
        )
    if acc:
        print(
            f"  accuracy {100 * acc['accuracy']:.2f} % ({acc['correct']}/{acc['images']}), fp32 reference "
            f"{100 * acc['fp32_reference']:.2f} %: {100 * acc['of_fp32']:.2f} % of fp32 "
            f"({'pass' if acc['pass'] else 'FAIL'}, >= 99 %)"
        )
    print(f"  samples completed {sut['completed']}/{sut['issued']}, lost {sut['lost']}, degraded {sut['degraded']}")
    print(f"  report {r['report']}; LoadGen logs in {Path(r['files']['summary']).parent}")
    print(f"  ok: {'yes' if r['ok'] else 'NO'}")


# ---- the docs section ---------------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _row(r: dict[str, Any], path: Path) -> str:
    fleet, lat, acc = r["fleet"], r["query_latency_ms"] or r["latency_ms"], r["accuracy"]
    lg = r["loadgen"]
    result = lg["validity"] or ("accuracy run" if r["mode"] == "accuracy" else "–")
    if lg["why"]:
        result += f" ({'; '.join(lg['why'])})"
    if acc:
        accuracy = (
            f"{100 * acc['accuracy']:.2f} % of {acc['images']} vs fp32 {100 * acc['fp32_reference']:.2f} % "
            f"= {100 * acc['of_fp32']:.2f} % ({'**pass**' if acc['pass'] else '**fail**'}, ≥ 99 %)"
        )
    else:
        accuracy = "–"
    res = r["mlperf_result"]
    figure = "–" if res is None else f"**{_fmt(res['value'], 1 if res['unit'] == 'samples/s' else 2)} {res['unit']}**"
    load = r["machine"]["load_avg_at_start"][0]
    per_query = f", {lg['samples_per_query']}/query" if r["scenario"] == "multistream" else ""
    settings = (
        f"every image once, {fleet['max_in_flight']} in flight"
        if r["mode"] == "accuracy"
        else f"≥ {lg['min_duration_ms'] / 1000:g} s, ≥ {lg['min_query_count']} queries{per_query}, "
        f"{fleet['max_in_flight']} in flight, {fleet['library_size']} images"
    )
    return (
        f"| {fleet['method']} K={fleet['parts']} {fleet['precision']} ({fleet['dataset']}) | {r['scenario']} | "
        f"{r['mode']} | {settings} | {result} | {figure} | "
        f"{_fmt(lat['p50'])} / {_fmt(lat['p90'])} / {_fmt(lat['p99'])} | "
        f"{_fmt(r['samples_per_second'], 1)} | {accuracy} | {r['sut']['completed']}/{r['sut']['issued']} | "
        f"{load:.2f} | {r['date'][:10]} | `{r['command']}` → `{path.as_posix()}` |"
    )


def render_section(results: Path, repo: Path | None = None) -> str:
    """The "LoadGen (MLPerf)" section from every bench/results/loadgen-*.json; no figure typed by hand."""
    reports = [(p, json.loads(p.read_text())) for p in results.glob("loadgen-*.json")]
    # the demo fleet's rows first, then other fleets'; scenarios in MLPerf's order, accuracy after performance
    reports.sort(
        key=lambda pr: (
            "runs/demo/" not in pr[1]["fleet"]["engines"],
            pr[1]["fleet"]["engines"],
            pr[1]["mode"] == "accuracy",
            SCENARIO_ORDER.index(pr[1]["scenario"]),
        )
    )
    rel = [(p.relative_to(repo) if repo and p.is_relative_to(repo) else p, r) for p, r in reports]
    cpus = sorted({f"{r['machine']['cpu']} ({r['machine']['isa']}), {r['machine']['cores']} cores" for _, r in reports})
    lines = [
        "## LoadGen (MLPerf)",
        "",
        "MLPerf's LoadGen (`mlcommons-loadgen` 6.0.17) drives a real one-machine fleet through its camera path: a "
        "private mosquitto on loopback, the aggregator and one agent per part as real `vitfleet` processes (one ONNX "
        "Runtime thread each, pinned), and the SUT in the LoadGen process sending every sample as a camera frame "
        "through the kit's camera node (its credit admission: at most `max_in_flight` frames in the fleet) and "
        "completing it when the fleet's prediction arrives. The sample library is the bundle's own test split "
        "(`dataset://` replay). Latency is LoadGen's, from issue to the prediction's arrival, on one clock (p50 / p90 "
        "/ p99 are per query for MultiStream, per sample otherwise; an Offline sample's latency counts from the "
        "start of its one query). The MLPerf result is the figure MLPerf's submission checker takes: SingleStream's "
        "early-stopping estimate of the p90 latency, MultiStream's of the p99 per-query latency (LoadGen's upper "
        "bound for the number of queries run, so above the plain percentile beside it), Offline's samples/s. Runs "
        "are short (the settings column; MLPerf's submission minimums are 600 s), so they show what the fleet does, "
        "not a submission. Accuracy mode scores LoadGen's accuracy log against the "
        "labels; the reference is the same bundle's fp32 ONNX engines offline on the same images (MLPerf edge "
        "rule: ≥ 99 % of fp32). LoadGen's own files (`mlperf_log_summary.txt`, `mlperf_log_detail.txt`, "
        "`mlperf_log_accuracy.json`) are kept in `bench/results/loadgen/<name>/` beside each report. Generated "
        "from the JSONs by `vitfleet bench loadgen --render-only --docs docs/benchmarks.md`.",
        "",
        f"CPU: {'; '.join(cpus) if cpus else 'no run yet'}. Load = 1-minute load average at the start (the machine "
        "was shared with other work, so latencies are those of a contended machine)."
        + (
            " The demo bundle (`vitfleet demo`'s, in runs/demo) is a small 2-part DeViT trained briefly, so its "
            "accuracy is low; what these rows check is the fleet's accuracy against its own fp32 reference."
            if any("runs/demo/" in r["fleet"]["engines"] for _, r in reports)
            else ""
        ),
        "",
        "| fleet | scenario | mode | LoadGen settings | LoadGen result | MLPerf result | p50 / p90 / p99 ms | "
        "samples/s | accuracy | samples completed | load | date | command → results |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[_row(r, p) for p, r in rel],
        "",
    ]
    if any("runs/seed/" in r["fleet"]["engines"] for _, r in rel):
        lines += [
            "Rows on `runs/seed/` engines are the seed-scale ViT-B/16 (random init, **untrained: latency and "
            "throughput only, no accuracy**; its test split is the seed bench's synthetic 224² images), every "
            "agent an unquotaed process on the same 2 shared cores as LoadGen, the broker and the aggregator "
            "(not the lab's one-quota-per-board fleet of the Seed scale section).",
            "",
        ]
    if not any(r["fleet"]["parts"] == 4 and "runs/seed/" in r["fleet"]["engines"] for _, r in rel):
        lines += [
            "**Seed scale (ViT-B/16, K = 4, int8): not measured yet.** Its rows come from the same command on the "
            "seed-scale engines, e.g. `vitfleet bench loadgen --scenario singlestream --engines ENGINES --bundle "
            "BUNDLE --encoding jpeg --min-queries 200 --out bench/results/loadgen-seed-singlestream.json --docs "
            "docs/benchmarks.md` (and `--scenario offline --expected-qps 40 --out "
            "bench/results/loadgen-seed-offline.json`: Offline's one query must outlast the min duration, so "
            "--expected-qps has to exceed what the fleet does), with ENGINES/BUNDLE the K = 4 ED-ViT int8 engines "
            "and bundle under `runs/seed/`; no figure is given until those JSONs exist.",
            "",
        ]
    return "\n".join(lines)


def write_section(doc: Path, body: str) -> None:
    """Replace the section between its markers, or append it (with them) at the end of the file; nothing else in
    the file is touched."""
    from vitfleet.bench.report import replace_section

    text = doc.read_text() if doc.exists() else ""
    if SECTION_START not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION_START}\n{SECTION_END}\n"
    doc.write_text(replace_section(text, body, SECTION_START, SECTION_END))
