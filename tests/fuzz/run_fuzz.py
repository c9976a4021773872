"""Runs the fuzz targets of tests/fuzz/targets.py for a bounded time and reports the cases run.

    python tests/fuzz/run_fuzz.py --seconds 60            # every target, time split evenly
    python tests/fuzz/run_fuzz.py --seconds 30 --target c_entry

Engine: atheris (libFuzzer, coverage-guided over blitz_acl's Python code) when it is installed
(pip install atheris, or the package's `fuzz` extra), else random bytes from a seeded PRNG. Each
target runs in its own process; a crash, sanitizer report or broken invariant fails the run
(exit status 1) and the failing input is saved under --artifacts. The last line is the total,
e.g. "fuzzed 12345 cases in 60.1 s (atheris)".
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DONE = re.compile(r"Done (\d+) runs in (\d+) second")
MAX_INPUT_BYTES = 4096


def _atheris():
    try:
        import atheris

        return atheris
    except ImportError:
        return None


def _child(target_name: str, seconds: float, artifacts: Path, seed: int) -> None:
    """Runs one target in this process; prints libFuzzer's "Done N runs in S second(s)" line."""
    sys.path[:0] = [str(HERE), str(HERE.parent)]  # targets.py, and tests/abi_params.py
    atheris = _atheris()
    if atheris is not None:
        with atheris.instrument_imports(include=["blitz_acl"]):
            import targets
        target = targets.TARGETS[target_name]
        artifacts.mkdir(parents=True, exist_ok=True)
        atheris.Setup([sys.argv[0], f"-max_total_time={max(1, int(seconds))}", f"-max_len={MAX_INPUT_BYTES}",
                       f"-seed={seed}", f"-artifact_prefix={artifacts}/{target_name}-", "-print_final_stats=1"],
                      target)
        atheris.Fuzz()  # exits the process when the time is up
        return
    import targets

    target = targets.TARGETS[target_name]
    rng = random.Random(seed)
    runs, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        data = rng.randbytes(rng.randint(0, MAX_INPUT_BYTES))
        try:
            target(data)
        except BaseException:
            artifacts.mkdir(parents=True, exist_ok=True)
            (artifacts / f"{target_name}-crash-{runs}").write_bytes(data)
            raise
        runs += 1
    print(f"Done {runs} runs in {int(time.monotonic() - start)} second(s)", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="total time, split over the targets")
    parser.add_argument("--target", choices=["all", "sabi", "c_entry"], default="all")
    parser.add_argument("--artifacts", type=Path, default=Path("fuzz-artifacts"))
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.seconds, args.artifacts, args.seed)
        return 0

    names = ["sabi", "c_entry"] if args.target == "all" else [args.target]
    engine = "atheris" if _atheris() is not None else "random bytes"
    total, failed, start = 0, False, time.monotonic()
    for name in names:
        seconds = args.seconds / len(names)
        run = subprocess.run([sys.executable, __file__, "--child", name, "--seconds", str(seconds),
                              "--artifacts", str(args.artifacts), "--seed", str(args.seed)],
                             capture_output=True, text=True, timeout=seconds + 600)
        done = DONE.findall(run.stderr)
        runs = int(done[-1][0]) if done else 0
        total += runs
        status = "ok" if run.returncode == 0 else f"FAILED (exit {run.returncode})"
        print(f"{name}: {runs} cases, {status}", flush=True)
        if run.returncode != 0:
            failed = True
            print(run.stdout[-4000:] + run.stderr[-8000:], file=sys.stderr)
    print(f"fuzzed {total} cases in {time.monotonic() - start:.1f} s ({engine}, seed {args.seed})")
    return 1 if failed or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
