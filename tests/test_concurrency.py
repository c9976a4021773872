"""Concurrency and interruption on the CPU device.

Several Python threads calling at once, each on its own stream (the public API) and all on one
shared stream (the C entry points), give the results of serial calls; the GIL is released while
the kernel runs; Ctrl-C (SIGINT) during a long call raises KeyboardInterrupt promptly and leaves
the process able to make correct calls and exit cleanly.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import blitz_acl
from blitz_acl.devices import cpu
from blitz_acl.devices.descriptors import CallScope

THREADS = 4
CALLS_PER_THREAD = 6
ALL_ZERO = {"tensors": 0, "int_arrays": 0, "executors": 0, "streams": 0, "allocations": 0}


def _problems():
    """Distinct small problems (shapes, dtypes, masks, sabi) so a mix-up between calls shows."""
    rng = np.random.default_rng(7)
    out = []
    for i, (sq, skv, dtype) in enumerate([(130, 600, np.float32), (64, 64, np.float16),
                                          (257, 300, np.float32), (100, 1100, np.float16)]):
        q = rng.standard_normal((2, 2, sq, 64)).astype(dtype)
        k = rng.standard_normal((2, 1, skv, 64)).astype(dtype)
        v = rng.standard_normal((2, 1, skv, 64)).astype(dtype)
        sabi = blitz_acl.sabi.random_pattern(2, 2, sq, skv, 0.4, block_shape=(64, 128), seed=i, shuffle=True)
        out.append(dict(query=q, key=k, value=v, sabi=sabi, block_shape=(64, 128), num_key_value_heads=1,
                        sparse_mode=(0, 2, 3, 4)[i], pre_tokens=200, next_tokens=50,
                        return_lse=True))
    return out


def _run(p):
    p = dict(p)
    return blitz_acl.blitz_sparse_attention(p.pop("query"), p.pop("key"), p.pop("value"), device="cpu", **p)


def test_threads_on_their_own_streams_match_serial_calls(lib):
    problems = _problems()
    serial = [_run(p) for p in problems]
    jobs = [i % len(problems) for i in range(THREADS * CALLS_PER_THREAD)]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda i: (i, _run(problems[i])), jobs))
    for i, (out, lse) in results:
        np.testing.assert_array_equal(out, serial[i][0])
        np.testing.assert_array_equal(lse, serial[i][1])
    assert lib.live_objects() == ALL_ZERO


def _prepare_raw(lib, scope, p):
    """Descriptors + GetWorkspaceSize for problem p through the raw entry point."""
    from blitz_acl import arguments
    from blitz_acl.devices import op_call

    call = arguments.normalize(p["query"], p["key"], p["value"], p["sabi"], device="cpu",
                               **{k: v for k, v in p.items() if k not in ("query", "key", "value", "sabi")})
    out, lse = op_call.allocate_outputs(call)
    executor, size = op_call.prepare(scope, call, out, lse)
    return executor, size, out, lse


@pytest.mark.parametrize("shared", ["created_stream", "default_stream"])
def test_threads_sharing_one_stream_match_serial_calls(lib, shared):
    """Threads enqueue onto one stream (in-order queue) at once, then each synchronises it."""
    problems = _problems()
    serial = [_run(p) for p in problems]
    with CallScope(lib) as owner:
        stream = owner.stream() if shared == "created_stream" else lib.ffi.NULL
        barrier = threading.Barrier(THREADS)

        def worker(t):
            cpu.ensure_device(lib)
            results = []
            with CallScope(lib) as scope:
                scope.on_exit("aclrtSynchronizeStream", stream)
                for c in range(CALLS_PER_THREAD):
                    i = (t + c) % len(problems)
                    executor, size, out, lse = _prepare_raw(lib, scope, problems[i])
                    workspace = scope.device_buffer(size)
                    if c == 0:
                        barrier.wait()  # every thread launches at once
                    from blitz_acl.devices import op_call
                    op_call.launch(scope, executor, workspace, size, stream)
                    results.append((i, out, lse))
                lib.call("aclrtSynchronizeStream", stream)
            return results

        with ThreadPoolExecutor(THREADS) as pool:
            all_results = [r for rs in pool.map(worker, range(THREADS)) for r in rs]
    assert len(all_results) == THREADS * CALLS_PER_THREAD
    for i, out, lse in all_results:
        np.testing.assert_array_equal(out, serial[i][0])
        np.testing.assert_array_equal(lse, serial[i][1])
    assert lib.live_objects() == ALL_ZERO


def test_python_thread_progresses_during_a_long_call():
    """The main thread counts while a worker thread's kernel runs (GIL released), and the
    other way round: the main thread's call (waiting in slices) lets a worker count."""
    q = np.random.default_rng(2).standard_normal((1, 4, 4096, 64), dtype=np.float32)
    ticks = {"n": 0}
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks["n"] += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    start = time.perf_counter()
    blitz_acl.blitz_sparse_attention(q, q, q, device="cpu")
    elapsed = time.perf_counter() - start
    stop.set()
    counter.join()
    assert ticks["n"] >= min(10, elapsed / 0.002), f"{ticks['n']} ticks in {elapsed:.3f}s"


# The child makes a long call, is sent SIGINT during it, then makes a correct call and exits 0.
SIGINT_CHILD = textwrap.dedent("""
    import signal, sys, time
    import numpy as np
    import blitz_acl
    import oracle
    from blitz_acl.devices import cpu, library

    # Python leaves SIGINT ignored when it starts ignored, as in a job a non-interactive shell
    # ran with `&` (CI runs suites side by side so): the handler is what this test is about.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    rng = np.random.default_rng(0)
    # Size the long call from a timed probe, so it lasts ~{target} s however fast the kernel is.
    probe = rng.standard_normal((1, 1, {probe_seq}, 64), dtype=np.float32)
    blitz_acl.blitz_sparse_attention(probe, probe, probe, device="cpu")
    # The fastest of three: a busy machine only ever slows a probe, and a slowed probe would size
    # a call that ends before the signal.
    probes = []
    for _ in range(3):
        begin = time.perf_counter()
        blitz_acl.blitz_sparse_attention(probe, probe, probe, device="cpu")
        probes.append(time.perf_counter() - begin)
    per_head = min(probes) * ({seq} / {probe_seq}) ** 2
    heads = max(1, min({max_heads}, round({target} / per_head)))
    q = rng.standard_normal((1, heads, {seq}, 64), dtype=np.float32)
    print("calling", flush=True)
    start = time.perf_counter()
    try:
        blitz_acl.blitz_sparse_attention(q, q, q, device="cpu")
        print("the call finished before the signal arrived", flush=True)
        sys.exit(4)
    except KeyboardInterrupt:
        interrupted = time.perf_counter() - start
    assert cpu.abandoned_calls() == 1, cpu.abandoned_calls()

    small = rng.standard_normal((1, 2, 150, 32), dtype=np.float32)
    out = blitz_acl.blitz_sparse_attention(small, small, small, device="cpu")
    np.testing.assert_allclose(out, oracle.attention(small, small, small), atol=1e-4, rtol=0)

    cpu.wait_for_abandoned_calls()  # the abandoned kernel finishes; its scope is released
    full = time.perf_counter() - start
    live = library.load().live_objects()
    assert all(v == 0 for v in live.values()), live
    print(f"ok interrupted after {{interrupted:.3f}} s of a {{full:.3f}} s call", flush=True)
""")
SIGNAL_AFTER_SECONDS = 0.3
LONG_CALL_SECONDS = 2.0


def test_ctrl_c_during_a_long_call_leaves_the_process_usable(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(SIGINT_CHILD.format(seq=8192, probe_seq=2048, max_heads=64, target=LONG_CALL_SECONDS))
    package_root = str(Path(blitz_acl.__file__).resolve().parent.parent)  # the blitz_acl under test
    tests_dir = str(Path(__file__).resolve().parent)  # the child checks with tests/oracle.py
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, tests_dir,
                                                                    os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "calling"
        time.sleep(SIGNAL_AFTER_SECONDS)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=600)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, stdout + stderr
    words = stdout.split()
    interrupted, full = float(words[words.index("after") + 1]), float(words[words.index("a") + 1])
    # Prompt: KeyboardInterrupt came within a second of the signal, well before the kernel ended.
    assert interrupted < SIGNAL_AFTER_SECONDS + 1.0 and interrupted < full / 2, stdout
