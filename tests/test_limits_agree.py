"""Issue 13's check: every limit of the spec is refused in the same words by Python, the CPU
device and the NPU tiling (through the npu_sim device, which runs the op's own tiling at
GetWorkspaceSize). Nothing here is typed by hand: the values just past each limit and the
expected messages come from the generated blitz_acl/limits.py (aclnn_gen/spec.py), whose C++
twins (kernel_src/common/op_limits.h, op_refusals.h) test_aclnn_gen keeps fresh.

The C sides are reached past Python's own checks with `blitz_acl.devices.run` on a call that
Python accepted for the reference device and then had one field changed, as a C caller's
arguments would be. The npu_sim library is the CPU device's aclnn layer in front of the NPU
tiling, so a limit both devices share (sparse modes, layout names, block shapes) is refused
there by the aclnn layer's check, in the same words and with the NPU's title; every NPU-only limit
is refused by the tiling itself. tests/npu_host/test_tiling_plan.cpp asks plan_tiling directly
for each limit as well, with the C++ twins of these functions."""

import dataclasses

import numpy as np
import pytest

import blitz_acl
from blitz_acl import arguments, devices, limits
from blitz_acl.devices import npu_args
from blitz_acl.devices.status import AclError

import cases  # tests/cases.py: stores BNSD data in each layout, by its own reading
import oracle  # tests/oracle.py: writes its output in each layout's output layout
import oracle_tnd  # tests/oracle_tnd.py: reads the packed layout batch by batch

ACLNN_ERR_PARAM_INVALID = 161002
B, N, S, D = 1, 2, 64, 64  # inside every limit of both devices
VALID_BLOCK = (limits.BLOCK_Q[0], limits.BLOCK_KV_STEP)


def _tensors(b=B, n=N, nkv=None, sq=S, skv=S, d=D, dtype=np.float16):
    q = np.zeros((b, n, sq, d), dtype)
    kv = np.zeros((b, nkv or n, skv, d), dtype)  # np.zeros: pages are touched only if read
    return q, kv, kv


def _call(tensors=None, **changes):
    """A call Python accepts (device 'reference' has no device limits), then `changes` applied."""
    q, k, v = tensors or _tensors()
    call = arguments.normalize(q, k, v, device="reference", block_shape=VALID_BLOCK)
    return dataclasses.replace(call, **changes)


def _refused_by_c(call, device):
    with pytest.raises(AclError) as e:
        devices.run(dataclasses.replace(call, device=device), device)
    assert e.value.status == ACLNN_ERR_PARAM_INVALID, e.value
    return e.value.message


def _refused_by_python(fn):
    with pytest.raises((ValueError, TypeError, NotImplementedError)) as e:
        fn()
    return str(e.value)


def _public(tensors=None, **kwargs):
    q, k, v = tensors or _tensors()
    kwargs.setdefault("block_shape", VALID_BLOCK)
    return lambda: blitz_acl.blitz_sparse_attention(q, k, v, **kwargs)


BQ_PAST = max(limits.BLOCK_Q) * 2
BQ_BELOW = min(limits.BLOCK_Q) // 2
BKV_PAST = limits.BLOCK_KV_MAX + limits.BLOCK_KV_STEP
BKV_OFF_STEP = limits.BLOCK_KV_STEP + limits.BLOCK_KV_STEP // 2
BAD_MODES = (min(limits.SPARSE_MODES) - 1, max(limits.SPARSE_MODES) + 1)
BAD_LAYOUT = limits.LAYOUTS[0][::-1]  # not a layout name

# (id, {side: (how that side is asked)}, expected message). Sides: python_cpu (the public call,
# device 'cpu'), cpu (the CPU device library), python_npu (npu_args.check_supported, what
# device 'npu' runs before CANN), npu_tiling (the npu_sim device's GetWorkspaceSize).
CASES = []
for bq, bkv in ((BQ_PAST, limits.BLOCK_KV_STEP), (BQ_BELOW, limits.BLOCK_KV_STEP), (VALID_BLOCK[0], BKV_PAST),
                (VALID_BLOCK[0], BKV_OFF_STEP)):
    CASES.append((f"block_shape_{bq}x{bkv}_cpu", {
        "python_cpu": _public(block_shape=(bq, bkv), device="cpu"),
        "cpu": _call(block_shape=(bq, bkv)),
    }, limits.refuse_block_shape(bq, bkv, limits.CPU_TITLE)))
    CASES.append((f"block_shape_{bq}x{bkv}_npu", {
        "python_npu": _call(block_shape=(bq, bkv)),
        "npu_tiling": _call(block_shape=(bq, bkv)),
    }, limits.refuse_block_shape(bq, bkv, limits.NPU_TITLE)))
for mode in BAD_MODES:
    CASES.append((f"sparse_mode_{mode}", {
        "python_cpu": _public(sparse_mode=mode, device="cpu"),
        "cpu": _call(sparse_mode=mode),
        "python_npu": _call(sparse_mode=mode),
        "npu_tiling": _call(sparse_mode=mode),
    }, limits.refuse_sparse_mode(mode)))
CASES.append(("layout_unknown", {
    "python_cpu": _public(input_layout=BAD_LAYOUT, device="cpu"),
    "cpu": _call(input_layout=BAD_LAYOUT),
    "npu_tiling": _call(input_layout=BAD_LAYOUT),
}, limits.refuse_layout(BAD_LAYOUT)))
CPU_D_PAST = limits.CPU_HEAD_DIM_MAX + 1
CASES.append(("cpu_head_dim", {
    "python_cpu": _public(_tensors(d=CPU_D_PAST), device="cpu"),
    "cpu": _call(_tensors(d=CPU_D_PAST)),
}, limits.refuse_cpu_head_dim(CPU_D_PAST)))
for d in (limits.NPU_HEAD_DIM_MAX + limits.NPU_HEAD_DIM_ALIGN, limits.NPU_HEAD_DIM_MIN - 1,
          limits.NPU_HEAD_DIM_MIN + 1):
    CASES.append((f"npu_head_dim_{d}", {
        "python_npu": _call(_tensors(d=d)),
        "npu_tiling": _call(_tensors(d=d)),
    }, limits.refuse_npu_head_dim(d)))
HEADS_PAST = limits.NPU_HEADS_MAX + 1
CASES.append(("npu_heads", {
    "python_npu": _call(_tensors(n=HEADS_PAST, sq=1, skv=1, d=limits.NPU_HEAD_DIM_MIN)),
    "npu_tiling": _call(_tensors(n=HEADS_PAST, sq=1, skv=1, d=limits.NPU_HEAD_DIM_MIN)),
}, limits.refuse_npu_heads(HEADS_PAST)))
GROUP_PAST = limits.NPU_GROUP_MAX + 1
CASES.append(("npu_group", {
    "python_npu": _call(_tensors(n=GROUP_PAST, nkv=1, sq=1, skv=1, d=limits.NPU_HEAD_DIM_MIN)),
    "npu_tiling": _call(_tensors(n=GROUP_PAST, nkv=1, sq=1, skv=1, d=limits.NPU_HEAD_DIM_MIN)),
}, limits.refuse_npu_group(GROUP_PAST)))
BATCH_PAST = limits.NPU_BATCH_MAX + 1
CASES.append(("npu_batch", {
    "python_npu": _call(_tensors(b=BATCH_PAST, n=1, sq=1, skv=1, d=limits.NPU_HEAD_DIM_MIN)),
    "npu_tiling": _call(_tensors(b=BATCH_PAST, n=1, sq=1, skv=1, d=limits.NPU_HEAD_DIM_MIN)),
}, limits.refuse_npu_batch(BATCH_PAST)))
KV_BLOCKS_PAST = limits.NPU_KV_BLOCKS_MAX + 1
_long_kv = _tensors(n=1, sq=1, skv=KV_BLOCKS_PAST * VALID_BLOCK[1], d=limits.NPU_HEAD_DIM_MIN)
CASES.append(("npu_kv_blocks", {
    "python_npu": _call(_long_kv),
    "npu_tiling": _call(_long_kv),
}, limits.refuse_npu_kv_blocks(KV_BLOCKS_PAST)))
# Python refuses a float32 call for device='npu' in arguments (with these words), which only
# torch_npu tensors reach; the tiling's refusal is checked here.
CASES.append(("npu_dtype", {
    "npu_tiling": _call(_tensors(dtype=np.float32)),
}, limits.refuse_npu_dtype()))

# An atten_mask of a dtype no device takes: Python and the aclnn layer (shared by the CPU and the
# npu_sim libraries, so it refuses before the NPU tiling runs) name the dtype; the NPU binding
# words it as the tiling does (tests/npu_host asks the tiling itself).
_float_mask = np.zeros((S, S), np.float32)
# A query dtype the CPU device does not take, in the spec's one sentence: Python names it as
# arrays does; the aclnn layer's words (aclDataType names) are checked by test_binding, since
# the binding cannot describe such a tensor to the library.
CASES.append(("qkv_dtype_python", {
    "python_cpu": _public(_tensors(dtype=np.float64), device="cpu"),
}, limits.refuse_qkv_dtype("query", "float64")))
CASES.append(("mask_dtype_python", {
    "python_cpu": _public(atten_mask=_float_mask, sparse_mode=1, device="cpu"),
}, limits.refuse_mask_dtype("atten_mask", "float32")))
CASES.append(("mask_dtype_aclnn", {
    "cpu": _call(atten_mask=_float_mask, sparse_mode=1),
    "npu_tiling": _call(atten_mask=_float_mask, sparse_mode=1),
}, limits.refuse_mask_dtype("attenMask", "ACL_FLOAT")))
CASES.append(("mask_dtype_npu", {
    "python_npu": _call(atten_mask=_float_mask, sparse_mode=1),
}, limits.refuse_npu_mask_dtype()))

# One bad sabi entry: Python's format check and the CPU device's own entry check (C callers, and
# validate=False) name it alike. The NPU devices get compacted rows (sabi.compact), so none
# reaches their tiling.
_SABI_KV = 4 * VALID_BLOCK[1]  # 4 key blocks: a row of width 2 fits
_SABI_TENSORS = _tensors(skv=_SABI_KV)
_Q_BLOCKS, _KV_BLOCKS = -(-S // VALID_BLOCK[0]), 4
_sabi_index = np.full((1, 1, _Q_BLOCKS, 2), limits.SABI_PAD, np.uint16)
_sabi_index[0, 0, _Q_BLOCKS - 1, 1] = _KV_BLOCKS
CASES.append(("sabi_index", {
    "python_cpu": _public(_SABI_TENSORS, sabi=_sabi_index, device="cpu"),
    "cpu": _call(_SABI_TENSORS, sabi=_sabi_index),
}, limits.refuse_sabi_index(0, 0, _Q_BLOCKS - 1, 1, _KV_BLOCKS, _SABI_KV, VALID_BLOCK[1], _KV_BLOCKS)))
_sabi_repeat = np.zeros((1, 1, _Q_BLOCKS, 2), np.uint16)  # every row lists block 0 twice
CASES.append(("sabi_repeat", {
    "python_cpu": _public(_SABI_TENSORS, sabi=_sabi_repeat, device="cpu"),
    "cpu": _call(_SABI_TENSORS, sabi=_sabi_repeat),
}, limits.refuse_sabi_repeat(0, 0, 0, 1, 0)))

# TND (packed): two cumulative length lists of different counts, and an explicit mask, which
# packed calls do not take. Python, the aclnn layer (both libraries: the npu_sim one refuses
# before its tiling runs) and BlitzSelectBlocks' Python check word them alike; the NPU tiling's
# own copy is asked by tests/npu_host.
_T = S
_TND_TENSORS = tuple(np.zeros((_T, N, D), np.float16) for _ in range(3))
_TND_ENDS = (_T // 2, _T)  # two batches


def _tnd_call(**changes):
    """A packed call Python accepts (device 'cpu': the reference has no TND), then `changes`."""
    q, k, v = _TND_TENSORS
    call = arguments.normalize(q, k, v, device="cpu", block_shape=VALID_BLOCK, input_layout="TND",
                               actual_seq_lengths=_TND_ENDS, actual_seq_lengths_kv=_TND_ENDS)
    return dataclasses.replace(call, **changes)


def _public_tnd(**kwargs):
    q, k, v = _TND_TENSORS
    kwargs = dict(dict(block_shape=VALID_BLOCK, input_layout="TND", actual_seq_lengths=_TND_ENDS,
                       actual_seq_lengths_kv=_TND_ENDS, device="cpu"), **kwargs)
    return lambda: blitz_acl.blitz_sparse_attention(q, k, v, **kwargs)


def _select_tnd_call(**changes):
    """BlitzSelectBlocks' packed call as Python accepts it, then `changes` (a C caller's)."""
    from blitz_acl import block_select

    call = block_select.normalize(
        _TND_TENSORS[0], _TND_TENSORS[1], block_shape=VALID_BLOCK, mass=0.9, top_k=None,
        anchors=block_select.Anchors(), method="mean_pool", share_kv_groups=False, num_heads=N,
        num_key_value_heads=0, input_layout="TND", scale_value=None, actual_seq_lengths=_TND_ENDS,
        actual_seq_lengths_kv=_TND_ENDS, stride=8, sub_block=32, refine_below=0.5, device=None)
    return dataclasses.replace(call, **changes)


def _select_refused_by_c(call, device):
    from blitz_acl.devices import select_call

    with pytest.raises(AclError) as e:
        select_call.run(call, device)
    assert e.value.status == ACLNN_ERR_PARAM_INVALID, e.value
    return e.value.message


CASES.append(("packed_lengths", {
    "python_cpu": _public_tnd(actual_seq_lengths_kv=(_T,)),
    "python_select": lambda: blitz_acl.select_blocks(_TND_TENSORS[0], _TND_TENSORS[1], mass=0.9, input_layout="TND",
                                                     actual_seq_lengths=_TND_ENDS, actual_seq_lengths_kv=(_T,)),
    "cpu": _tnd_call(actual_seq_lengths_kv=(_T,)),
    "npu_tiling": _tnd_call(actual_seq_lengths_kv=(_T,)),
    "select_cpu": _select_tnd_call(actual_seq_lengths_kv=(_T,)),
    "select_npu_sim": _select_tnd_call(actual_seq_lengths_kv=(_T,)),
}, limits.refuse_packed_lengths(1, len(_TND_ENDS))))
# One bad length list: Python names it as its parameter, the aclnn layer by its C name.
_BAD_ENDS = {"required": None, "entry": (_T, _T // 2), "end": (_T // 2, _T - 1)}
_PACKED_WORDS = {
    "required": lambda name: limits.refuse_packed_required(name),
    "entry": lambda name: limits.refuse_packed_entry(name, 1, _T // 2, _T, _T),
    "end": lambda name: limits.refuse_packed_end(name, _T - 1, _T),
}
for what, ends in _BAD_ENDS.items():
    CASES.append((f"packed_{what}_python", {
        "python_cpu": _public_tnd(actual_seq_lengths=ends),
        "python_select": lambda ends=ends: blitz_acl.select_blocks(
            _TND_TENSORS[0], _TND_TENSORS[1], mass=0.9, input_layout="TND", actual_seq_lengths=ends,
            actual_seq_lengths_kv=_TND_ENDS),
    }, _PACKED_WORDS[what]("actual_seq_lengths")))
    CASES.append((f"packed_{what}_aclnn", {
        "cpu": _tnd_call(actual_seq_lengths=ends),
        "npu_tiling": _tnd_call(actual_seq_lengths=ends),
        "select_cpu": _select_tnd_call(actual_seq_lengths=ends),
        "select_npu_sim": _select_tnd_call(actual_seq_lengths=ends),
    }, _PACKED_WORDS[what]("actualSeqLengths")))
# Padded layouts' actual lengths and the explicit mask's shape: Python names them as its
# parameters and writes a shape as a tuple, the aclnn layer uses the C names and [..] shapes.
_THREE = _tensors(b=3)
CASES.append(("lengths_count_python", {
    "python_cpu": _public(_THREE, actual_seq_lengths=[S, S], device="cpu"),
}, limits.refuse_lengths_count("actual_seq_lengths", 2, 3)))
CASES.append(("lengths_count_aclnn", {
    "cpu": _call(_THREE, actual_seq_lengths=(S, S)),
    "npu_tiling": _call(_THREE, actual_seq_lengths=(S, S)),
}, limits.refuse_lengths_count("actualSeqLengths", 2, 3)))
CASES.append(("length_value_python", {
    "python_cpu": _public(actual_seq_lengths_kv=[S + 1], device="cpu"),
}, limits.refuse_length_value("actual_seq_lengths_kv", 0, S + 1, S)))
CASES.append(("length_value_aclnn", {
    "cpu": _call(actual_seq_lengths_kv=(S + 1,)),
    "npu_tiling": _call(actual_seq_lengths_kv=(S + 1,)),
}, limits.refuse_length_value("actualSeqLengthsKv", 0, S + 1, S)))
_short_mask = np.zeros((S, S - 1), bool)
CASES.append(("mask_shape_python", {
    "python_cpu": _public(atten_mask=_short_mask, sparse_mode=1, device="cpu"),
}, limits.refuse_mask_shape("atten_mask", str((S, S - 1)), B, N, S, S)))
CASES.append(("mask_shape_aclnn", {
    "cpu": _call(atten_mask=_short_mask, sparse_mode=1),
    "npu_tiling": _call(atten_mask=_short_mask, sparse_mode=1),
}, limits.refuse_mask_shape("attenMask", f"[{S}, {S - 1}]", B, N, S, S)))

# Head counts: GQA's divisibility and BSH's hidden size; the aclnn layer names numHeads /
# numKeyValueHeads (the npu_sim library's refuses before its tiling).
CASES.append(("gqa_python", {
    "python_cpu": _public(_tensors(n=4, nkv=3), device="cpu"),
}, limits.refuse_gqa("num_heads", 4, "num_key_value_heads", 3)))
CASES.append(("gqa_aclnn", {
    "cpu": _call(_tensors(n=4, nkv=2), num_key_value_heads=3),
    "npu_tiling": _call(_tensors(n=4, nkv=2), num_key_value_heads=3),
}, limits.refuse_gqa("numHeads", 4, "numKeyValueHeads", 3)))
_BSH = tuple(t.reshape(B, S, N * D) for t in _tensors())
CASES.append(("bsh_hidden", {
    "python_cpu": _public(_BSH, input_layout="BSH", num_heads=3, device="cpu"),
    "cpu": dataclasses.replace(arguments.normalize(*_BSH, device="reference", block_shape=VALID_BLOCK,
                                                   input_layout="BSH", num_heads=N),
                               num_heads=3, num_key_value_heads=1),
}, limits.refuse_bsh_hidden("query", N * D, 3)))

# BSH without num_heads: only Python can be asked (the C ABI's numHeads always has a value).
CASES.append(("bsh_heads", {
    "python_cpu": _public(_BSH, input_layout="BSH", device="cpu"),
}, limits.refuse_bsh_heads()))
_tnd_mask = np.zeros((_T, _T), bool)
CASES.append(("packed_mask", {
    "python_cpu": _public_tnd(atten_mask=_tnd_mask, sparse_mode=1),
    "cpu": _tnd_call(atten_mask=_tnd_mask, sparse_mode=1),
    "npu_tiling": _tnd_call(atten_mask=_tnd_mask, sparse_mode=1),
}, limits.refuse_packed_mask()))

SIDES = {
    "python_cpu": _refused_by_python,
    "cpu": lambda call: _refused_by_c(call, "cpu"),
    "python_npu": lambda call: _refused_by_python(lambda: npu_args.check_supported(call)),
    "npu_tiling": lambda call: _refused_by_c(call, "npu_sim"),
    "python_select": _refused_by_python,
    "select_cpu": lambda call: _select_refused_by_c(call, "cpu"),
    "select_npu_sim": lambda call: _select_refused_by_c(call, "npu_sim"),
}


@pytest.mark.parametrize("name, sides, expected", CASES, ids=[c[0] for c in CASES])
def test_every_side_refuses_in_the_specs_words(name, sides, expected):
    messages = {side: SIDES[side](how) for side, how in sides.items()}
    for side, message in messages.items():
        assert expected in message, (side, message)


def test_every_limit_family_is_covered():
    """Each refusal the spec words (but innerPrecise, which Python never sets) is exercised."""
    used = set()
    for _, _, expected in CASES:
        used |= {name for name in dir(limits) if name.startswith("refuse_")
                 and _matches(getattr(limits, name), expected)}
    refusals = {name for name in dir(limits) if name.startswith("refuse_")} - {"refuse_inner_precise"}
    assert refusals <= used, sorted(refusals - used)


def _matches(fn, message):
    """Whether `message` is what refusal `fn` words (its fixed text around the values)."""
    import inspect

    params = inspect.signature(fn).parameters
    probe = fn(*["\0" for _ in params])
    return all(piece in message for piece in probe.split("\0") if piece)


# The generated layout table (spec.LAYOUT_TABLE -> limits.LAYOUT_AXES / LAYOUT_OUTPUT, which the
# package's shape readers use) against the test oracles' own hand-written reading of each layout.
# Every size differs, so an axis order or an output layout stated wrongly changes a shape.
_SIZES = {"B": 2, "N": 3, "S": 5, "D": 7}
_SIZES["H"] = _SIZES["N"] * _SIZES["D"]


@pytest.mark.parametrize("layout", [x for x in limits.LAYOUTS if not limits.is_packed(x)])
def test_layout_table_agrees_with_the_oracles_reading(layout):
    b, n, s, d = (_SIZES[a] for a in "BNSD")
    x = cases._layout_tensor(np.random.default_rng(0), b, n, s, d, layout)
    bnsd = np.random.default_rng(0).standard_normal((b, n, s, d), dtype=np.float32)  # the same draw
    assert x.shape == tuple(_SIZES[a] for a in limits.LAYOUT_AXES[layout])
    assert x.ndim == limits.layout_rank(layout)
    assert limits.has_fused_heads(layout) == (x.ndim == 3)
    assert limits.is_head_major(layout) == (x.shape == bnsd.shape and np.array_equal(x, bnsd))
    assert x.shape[limits.seq_axis(layout)] == s

    out, _ = oracle.solve(oracle.parse(x, x, x, num_heads=n, input_layout=layout))
    written = limits.output_layout(layout)
    assert out.shape == tuple(_SIZES[a] for a in limits.LAYOUT_AXES[written])
    assert limits.output_layout(written) == written


def test_packed_layout_agrees_with_the_oracles_reading():
    layout, n, d = limits.PACKED_LAYOUT, _SIZES["N"], _SIZES["D"]
    ends = (2, 5)  # two batches of 2 and 3 tokens
    sizes = dict(_SIZES, T=ends[-1])
    x = np.random.default_rng(0).standard_normal(tuple(sizes[a] for a in limits.LAYOUT_AXES[layout]))
    pieces = list(oracle_tnd.batches(x, x, x, actual_seq_lengths=ends, actual_seq_lengths_kv=ends))
    assert [p[2].shape for p in pieces] == [(1, n, 2, d), (1, n, 3, d)]
    assert x.shape[limits.seq_axis(layout)] == ends[-1]
    out, lse = oracle_tnd.attention(x, x, x, actual_seq_lengths=ends, actual_seq_lengths_kv=ends,
                                    return_lse=True)
    assert out.shape == x.shape and limits.output_layout(layout) == layout
    assert [limits.is_packed(name) for name in limits.LAYOUTS].count(True) == 1
    assert not limits.is_head_major(layout) and not limits.has_fused_heads(layout)
