"""The machine and software a run measured on, for the report's header."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _isa() -> str:
    """The vector extensions that move timings 20-40 % between this project's machines (FIELD-NOTES)."""
    try:
        flags = next(
            (
                line.split(":", 1)[1].split()
                for line in open("/proc/cpuinfo", encoding="utf-8")
                if line.startswith("flags")
            ),
            [],
        )
    except OSError:
        return "unknown"
    have = set(flags)
    avx512 = [name for flag, name in (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16")) if flag in have]
    parts = [
        f"AVX-512 ({', '.join(avx512)})"
        if "avx512f" in have and avx512
        else "AVX-512"
        if "avx512f" in have
        else "AVX2"
        if "avx2" in have
        else "no AVX2"
    ]
    parts.append("AMX" if "amx_tile" in have else "no AMX")
    return ", ".join(parts)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def _mosquitto() -> str:
    try:
        out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def machine_facts() -> dict[str, Any]:
    import psutil

    return {
        "cpu": _cpu_model(),
        "isa": _isa(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {d: _version(d) for d in ("vitfleet", "torch", "timm", "onnx", "onnxruntime", "paho-mqtt", "numpy")}
        | {"mosquitto": _mosquitto()},
    }
