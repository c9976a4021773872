"""The machine a bench ran on: CPU model, ISA features, threads, library versions, git commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Optional

from bench import omp_wait_policy

REPO_ROOT = Path(__file__).resolve().parents[1]

# The /proc/cpuinfo flags that decide which kernel path runs (and how fast torch's baseline is).
ISA_FLAGS_OF_INTEREST = (
    "avx2", "fma", "f16c",
    "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_bf16", "amx_int8", "amx_fp16",
)


def _cpuinfo() -> dict:
    """First processor's fields of /proc/cpuinfo ({} where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            break  # end of the first processor's block
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name") or platform.processor() or platform.machine()


def isa_flags() -> list:
    flags = set(_cpuinfo().get("flags", "").split())
    return [f for f in ISA_FLAGS_OF_INTEREST if f in flags]


def git_commit() -> Optional[str]:
    """HEAD of the checkout the bench runs from, with '-dirty' if tracked files differ."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
        )
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else False
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(module_name: str) -> Optional[str]:
    module = sys.modules.get(module_name)
    if module is None:
        try:
            module = __import__(module_name)
        except Exception:  # an optional library that is absent or broken: report, go on
            return None
    return getattr(module, "__version__", None)


def cpu_device_summary() -> Optional[str]:
    """What blitz_acl's CPU device library says about itself (ISA path, threads), or why not."""
    try:
        from blitz_acl.devices import library

        return library.load().device_info()
    except Exception as error:  # not built, or an older library: a fact to report, not a stop
        return f"unavailable: {type(error).__name__}: {error}"


def describe(threads: int) -> dict:
    """Everything the JSON records about the machine and the software."""
    return {
        "cpu_model": cpu_model(),
        "isa_flags": isa_flags(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "omp_wait_policy": omp_wait_policy(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name) for name in ("torch", "numpy", "blitz_acl", "torch_npu", "matplotlib")
        },
        "blitz_acl_cpu_device": cpu_device_summary(),
        "git_commit": git_commit(),
    }
