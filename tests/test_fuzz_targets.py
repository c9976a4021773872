"""The fuzz targets (tests/fuzz/targets.py) on a few hundred seeded random inputs each, so they
stay runnable between CI's bounded fuzz runs (tests/fuzz/run_fuzz.py), and the runner itself."""

import random
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))
import targets  # noqa: E402

CASES = 300


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_target_holds_on_random_inputs(name):
    rng = random.Random(name)
    for _ in range(CASES):
        targets.TARGETS[name](rng.randbytes(rng.randint(0, 2048)))


def test_byte_reader_is_plausible_when_exhausted():
    """Exhausted input reads zeros, which must choose the plausible branch (so short inputs
    reach deep checks), and choices stay inside their ranges."""
    r = targets.ByteReader(b"")
    assert not r.rare(2) and r.int_in(3, 9) == 3 and r.pick("xyz") == "x"
    r = targets.ByteReader(bytes(range(256)) * 4)
    assert all(-5 <= r.int_in(-5, 5) <= 5 for _ in range(100))


def test_runner_reports_cases(tmp_path):
    import blitz_acl

    package_root = str(Path(blitz_acl.__file__).resolve().parent.parent)
    run = subprocess.run([sys.executable, str(FUZZ_DIR / "run_fuzz.py"), "--seconds", "2", "--seed", "1",
                          "--artifacts", str(tmp_path)], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": package_root})
    assert run.returncode == 0, run.stdout + run.stderr
    total = int(run.stdout.split("fuzzed ")[1].split()[0])
    assert total > 0 and "sabi:" in run.stdout and "c_entry:" in run.stdout
