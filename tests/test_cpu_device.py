"""The oracle matrix on device="cpu" against the independent float64 oracle (tests/oracle.py).

Every case of tests/cases.py, for float32, float16 and bfloat16, through numpy and torch, on
every kernel path this CPU has (portable, avx2, avx512, amx, neon, neon_bf16: the `kernel_path` fixture in
conftest.py forces each by BLITZ_ACL_CPU_PATH, read by the binding at each call, and the run ends
with a line naming the paths that ran). Inputs are rounded to the dtype first and the oracle runs
on the rounded inputs, so the bound measures the kernel's own error; the bound is relative to
torch SDPA's error in the same dtype (tests/bounds.py).
"""

import numpy as np
import pytest

import blitz_acl
import bounds
from blitz_acl import arrays
from cases import CASE_IDS, CASES, to_torch

DTYPES = ("float32", "float16", "bfloat16")
PATH_ENV = "BLITZ_ACL_CPU_PATH"
CASES_BY_NAME = {c.name: c for c in CASES}


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASE_IDS)
def test_case_matches_the_oracle(name, dtype, kind, kernel_path):
    case = CASES_BY_NAME[name]
    inputs, truth = bounds.case_truth(name, dtype)
    if kind == "torch":
        pytest.importorskip("torch")
        inputs = to_torch(inputs)
    result = blitz_acl.blitz_sparse_attention(inputs.query, inputs.key, inputs.value, device="cpu",
                                              **inputs.kwargs)
    out, lse = result if case.lse else (result, None)

    assert arrays.kind(out) == kind and arrays.dtype_name(out) == dtype
    out_layout = "BSND" if case.layout == "BNSD_BSND" else case.layout
    if case.lse:
        assert arrays.kind(lse) == kind and arrays.dtype_name(lse) == "float32"
        lse = arrays.to_numpy(lse)
    bounds.assert_within(arrays.to_numpy(out), truth, out_layout, lse, what=name)


def test_every_path_is_a_real_path(monkeypatch):
    """The device reports the path each run takes; each supported one is forced by the
    environment, and portable is always among them."""
    import cpu_paths
    from blitz_acl.devices import library

    lib = library.load()
    paths = cpu_paths.supported()
    for path in paths:
        monkeypatch.setenv(PATH_ENV, path)
        assert lib.device_info().startswith(f"kernel path {path};")
    monkeypatch.delenv(PATH_ENV)
    # Unforced, the device runs the best path the CPU supports (its "best=" field).
    info = lib.device_info()
    best = next(w[len("best="):] for w in info.replace(";", " ").split() if w.startswith("best="))
    assert info.startswith(f"kernel path {best};"), info


def test_a_path_this_cpu_lacks_is_an_error(monkeypatch):
    """Forcing a path this CPU lacks (the aarch64 ones on x86-64, the x86 ones on aarch64) is an
    error naming that path, never an illegal instruction; an unknown name lists every path."""
    import cpu_paths
    from blitz_acl.devices.status import AclError

    q = np.random.default_rng(0).standard_normal((1, 1, 64, 32), dtype=np.float32)
    lacking = [p for p in cpu_paths.ALL if p not in cpu_paths.supported()]
    assert lacking, "no CPU has every path (x86-64 and aarch64 ones)"
    for path in lacking:
        monkeypatch.setenv(PATH_ENV, path)
        with pytest.raises(AclError, match=f"the {path} kernel path was requested but this CPU"):
            blitz_acl.blitz_sparse_attention(q, q, q, device="cpu")
    monkeypatch.setenv(PATH_ENV, "fastest")
    with pytest.raises(AclError, match="must be one of " + "[|]".join(cpu_paths.ALL)):
        blitz_acl.blitz_sparse_attention(q, q, q, device="cpu")


def test_inputs_are_not_copied_or_modified(monkeypatch):
    """Contiguous inputs are passed by pointer (the descriptors the library gets point at the
    caller's buffers) and left untouched."""
    from blitz_acl.devices import descriptors

    inputs, _ = bounds.case_truth("sabi_random", "float16")
    before = [x.copy() for x in (inputs.query, inputs.key, inputs.value, inputs.kwargs["sabi"])]
    pointers = []
    create = descriptors.CallScope._create_tensor

    def recording(self, shape, dtype_name, data_ptr):
        pointers.append(int(data_ptr))
        return create(self, shape, dtype_name, data_ptr)

    monkeypatch.setattr(descriptors.CallScope, "_create_tensor", recording)
    blitz_acl.blitz_sparse_attention(inputs.query, inputs.key, inputs.value, device="cpu",
                                     **inputs.kwargs)
    for name in ("query", "key", "value"):
        assert getattr(inputs, name).ctypes.data in pointers, f"{name} was copied"
    after = (inputs.query, inputs.key, inputs.value, inputs.kwargs["sabi"])
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_strided_inputs_give_the_same_answer():
    """A non-contiguous view is copied at the boundary and computed like its contiguous copy."""
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 2, 64, 200), dtype=np.float32)[..., ::2]  # D = 100, stride 2
    k = rng.standard_normal((1, 2, 96, 100), dtype=np.float32)
    v = rng.standard_normal((1, 2, 96, 100), dtype=np.float32)
    out = blitz_acl.blitz_sparse_attention(q, k, v, device="cpu")
    bounds.assert_within(out, bounds.truth(np.ascontiguousarray(q), k, v, "float32"), "BNSD")
