"""The binding passes aclnnBlitzSparseAttentionGetWorkspaceSize's arguments by name (issue 13):
the generated builder (blitz_acl/devices/_op_args.py) must put every name where the hand-written
contract (tests/abi_params.py, the upstream prototype) has it, and refuse a wrong or missing
name, so two `const aclTensor *` arguments can never trade places silently. The C side's OpArgs
and exported entry point (kernel_src/cpu/cann_api/op_args.h, op_export.cpp) are generated from
the same list; the compiler checks the export against the public header's declaration."""

import re
from pathlib import Path

import pytest

from abi_params import PARAMS
from blitz_acl.devices import _op_args

ROOT = Path(__file__).resolve().parents[1]
NULL = object()


def _snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


SNAKE = [_snake(p) for p in PARAMS]


def test_every_name_lands_at_its_position_in_the_prototype():
    args = _op_args.blitz_sparse_attention_get_workspace_size_args(NULL, **{n: f"<{n}>" for n in SNAKE})
    assert args == tuple(f"<{n}>" for n in SNAKE)


def test_left_out_arguments_are_null_or_the_specs_default():
    required = {n: f"<{n}>" for n in ("query", "key", "value", "num_heads", "input_layout", "attention_out",
                                      "workspace_size", "executor")}
    args = dict(zip(SNAKE, _op_args.blitz_sparse_attention_get_workspace_size_args(NULL, **required)))
    for name in ("pse_shift", "atten_mask", "sabi", "deq_scale1", "quant_offset2", "block_shape", "softmax_lse"):
        assert args[name] is NULL, name
    # The op attributes' defaults, as upstream documents them (independent of aclnn_gen's spec).
    assert (args["scale_value"], args["next_tokens"], args["sparse_mode"], args["inner_precise"],
            args["softmax_lse_flag"]) == (1.0, 0, 0, 1, False)


@pytest.mark.parametrize("bad, message", [
    (dict(qeury=1), "has no parameter 'qeury'"),
    (dict(queryy=1), "has no parameter 'queryy'"),
])
def test_a_misspelt_name_is_refused(bad, message):
    named = {n: n for n in SNAKE}
    named.update(bad)
    with pytest.raises(TypeError, match=message):
        _op_args.blitz_sparse_attention_get_workspace_size_args(NULL, **named)


def test_a_missing_required_argument_is_refused():
    named = {n: n for n in SNAKE if n != "key"}
    with pytest.raises(TypeError, match="required parameter 'key' not given"):
        _op_args.blitz_sparse_attention_get_workspace_size_args(NULL, **named)


def test_the_c_side_copies_every_parameter_by_name():
    export = (ROOT / "kernel_src" / "cpu" / "cann_api" / "op_export.cpp").read_text()
    copies = re.findall(r"a\.(\w+) = (\w+);", export)
    assert copies == [(_snake(p), p) for p in PARAMS[:-2]]
    op_args = (ROOT / "kernel_src" / "cpu" / "cann_api" / "op_args.h").read_text()
    fields = re.findall(r"^  .*?\b(\w+) = [^;]+;$", op_args, re.M)
    assert fields == SNAKE[:-2]
    entry = (ROOT / "kernel_src" / "cpu" / "cann_api" / "op_entry.cpp").read_text()
    assert "GetWorkspaceSize(" not in entry.replace("get_workspace_size(", "")  # defined once, generated
