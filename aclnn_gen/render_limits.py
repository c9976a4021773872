"""Renders the op's limits, refusal messages and API defaults (spec.LIMITS, REFUSALS, API_DEFAULTS)
for C++ and Python: one statement of each limit, one wording of each refusal."""

from __future__ import annotations

import json
import string
from typing import List, Tuple

from .acl_api import DTYPES, ENUMS
from .cpp_frame import cpp_header
from .spec import (API_DEFAULTS, ATTRS, DTYPE_GROUPS, LAYOUT_TABLE, LIMITS, MASK_GROUP, QKV_GROUP, REFUSALS,
                   Refusal)


def _pieces(template: str) -> List[Tuple[str, str]]:
    """A str.format template as (literal, field) pairs (field "" at the end)."""
    out = []
    for literal, field, spec, conv in string.Formatter().parse(template):
        if spec or conv:
            raise ValueError(f"aclnn_gen: refusal templates take plain fields, got {{{field}!{conv}:{spec}}}")
        out.append((literal or "", field or ""))
    return out


def _check_params(r: Refusal) -> None:
    names = {n for n, _ in r.params}
    used = {f for _, f in _pieces(r.template) if f}
    if used != names:
        raise ValueError(f"aclnn_gen: refusal {r.name} declares {sorted(names)} but its template uses {sorted(used)}")
    for n, kind in r.params:
        if kind not in ("int", "str"):
            raise ValueError(f"aclnn_gen: refusal {r.name}: parameter {n} has unsupported kind {kind!r}")


def _cpp_refusal(r: Refusal) -> List[str]:
    _check_params(r)
    kinds = dict(r.params)
    params = ", ".join(("int64_t " if k == "int" else "const std::string &") + n for n, k in r.params)
    parts = []
    for literal, field in _pieces(r.template):
        if literal:
            parts.append(f"std::string({json.dumps(literal)})")
        if field:
            parts.append(f"std::to_string({field})" if kinds[field] == "int" else field)
    body = " + ".join(parts) if parts else 'std::string("")'
    return [f"inline std::string refuse_{r.name}({params}) {{", f"  return {body};", "}"]


def _py_refusal(r: Refusal) -> List[str]:
    _check_params(r)
    params = ", ".join(f"{n}: {k}" for n, k in r.params)
    text = "".join(lit.replace("{", "{{").replace("}", "}}") + (f"{{{f}}}" if f else "")
                   for lit, f in _pieces(r.template))
    return [f"def refuse_{r.name}({params}) -> str:", f"    return f{text!r}", ""]


def cpp_attr_defaults(attrs) -> List[str]:
    """kDefault<CName> for each scalar attribute (list attributes have their own constants)."""
    lines = []
    for a in attrs:
        name = "kDefault" + a.c_name[0].upper() + a.c_name[1:]
        if a.kind == "int":
            lines.append(f"constexpr int64_t {name} = {a.default};")
        elif a.kind == "float":
            lines.append(f"constexpr double {name} = {a.default!r};")
        elif a.kind == "bool":
            lines.append(f"constexpr bool {name} = {'true' if a.default else 'false'};")
        elif a.kind == "str":
            lines.append(f"constexpr const char {name}[] = {json.dumps(a.default)};")
    return lines


# What a header of refusal functions includes (host code only: std::string).
REFUSAL_INCLUDES = ["#include <stdint.h>", "", "#include <string>"]


def cpp_refusals(refusals) -> List[str]:
    """The refusals as inline C++ functions refuse_<name>(...), a blank line after each."""
    lines: List[str] = []
    for r in refusals:
        lines += _cpp_refusal(r) + [""]
    return lines


def py_refusals(refusals) -> List[str]:
    """The refusals as Python functions refuse_<name>(...), two blank lines apart."""
    lines: List[str] = []
    for r in refusals:
        lines += _py_refusal(r) + [""]
    return lines[:-2]


def _group(name: str):
    return next(g for g in DTYPE_GROUPS if g.name == name)


def _acl_dtype_set(name: str, dtypes) -> str:
    values = {c.name: c.value for c in next(e for e in ENUMS if e.name == "aclDataType").members}
    items = ", ".join(f"{values[DTYPES[d][0]]} /* {DTYPES[d][0]} */" for d in dtypes)
    return f"constexpr int32_t {name}[] = {{{items}}};"


def render_limits_header(spec_path: str) -> str:
    L = LIMITS
    bq = ", ".join(str(b) for b in L.block_q)
    modes = L.sparse_modes
    if list(modes) != list(range(modes[0], modes[-1] + 1)):
        raise ValueError("aclnn_gen: the C++ checks read sparse modes as a range; the spec's are not contiguous")
    about = ["BlitzSparseAttention's limits, stated once in the spec: the CPU device's checks, the NPU",
             "tiling and the kernels read them from here (plain constants: the Ascend C compiler includes",
             "it too); op_refusals.h words the refusals; blitz_acl/limits.py holds the same for Python."]
    includes = ["#if !defined(__CCE__) && !defined(__CCE_AICORE__)", "#include <stdint.h>", "#endif"]
    return cpp_header(spec_path, about, includes, ["blitz", "limits"], [
        "// Block shapes (bq, bkv), both devices: bq one of kBlockQ, bkv a multiple of kBlockKvStep",
        "// in [kBlockKvStep, kBlockKvMax]. NULL / empty blockShape at the C ABI = the original's default.",
        f"constexpr int64_t kBlockQ[] = {{{bq}}};",
        f"constexpr int64_t kBlockKvStep = {L.block_kv_step};",
        f"constexpr int64_t kBlockKvMax = {L.block_kv_max};",
        f"constexpr int64_t kDefaultBlockQ = {L.c_abi_default_block[0]};",
        f"constexpr int64_t kDefaultBlockKv = {L.c_abi_default_block[1]};",
        "",
        "// Head dim D: CPU 1..kCpuHeadDimMax; NPU a multiple of kNpuHeadDimAlign in [min, max].",
        f"constexpr int64_t kCpuHeadDimMax = {L.cpu_head_dim_max};",
        f"constexpr int64_t kNpuHeadDimMin = {L.npu_head_dim_min};",
        f"constexpr int64_t kNpuHeadDimMax = {L.npu_head_dim_max};",
        f"constexpr int64_t kNpuHeadDimAlign = {L.npu_head_dim_align};",
        "",
        "// The NPU kernel's heads, GQA group (N / Nkv) and batch (the CPU device has no upper limit).",
        f"constexpr int64_t kNpuHeadsMax = {L.npu_heads_max};",
        f"constexpr int64_t kNpuGroupMax = {L.npu_group_max};",
        f"constexpr int64_t kNpuBatchMax = {L.npu_batch_max};",
        "",
        "// sparseMode in [kSparseModeMin, kSparseModeMax]; innerPrecise in [0, kInnerPreciseMax].",
        f"constexpr int64_t kSparseModeMin = {modes[0]};",
        f"constexpr int64_t kSparseModeMax = {modes[-1]};",
        f"constexpr int64_t kInnerPreciseMax = {L.inner_precise_max};",
        "",
        "// sabi's \"no block\" entry (uint16); valid key-block indices are below it.",
        f"constexpr uint16_t kSabiPad = 0x{L.sabi_pad:X};",
        "",
        "inline bool block_shape_supported(int64_t bq, int64_t bkv) {",
        "  bool bq_ok = false;",
        "  for (int64_t v : kBlockQ) bq_ok = bq_ok || v == bq;",
        "  return bq_ok && bkv >= kBlockKvStep && bkv <= kBlockKvMax && bkv % kBlockKvStep == 0;",
        "}",
        "",
        "inline bool npu_head_dim_supported(int64_t d) {",
        "  return d >= kNpuHeadDimMin && d <= kNpuHeadDimMax && d % kNpuHeadDimAlign == 0;",
        "}",
        "",
    ])


def render_refusals_header(spec_path: str) -> str:
    L = LIMITS
    about = ["BlitzSparseAttention's refusal messages, worded once in the spec (Refusal): the CPU device's",
             "checks and the NPU tiling build their errors with these, and blitz_acl/limits.py has the same",
             "functions for Python, so a limit is refused in the same words everywhere. Host code only."]
    lines = [
        f"constexpr const char kCpuTitle[] = {json.dumps(L.cpu_title)};",
        f"constexpr const char kNpuTitle[] = {json.dumps(L.npu_title)};",
        f"constexpr const char kBlockShapeRule[] = {json.dumps(L.block_shape_rule())};",
        "// inputLayout names, in the spec's order (a parser maps the index to its own enum).",
        f"constexpr const char *const kLayouts[] = {{{', '.join(json.dumps(x) for x in L.layouts)}}};",
        f"constexpr const char kPackedLayout[] = {json.dumps(L.packed_layout)};",
        "// Each layout's index in kLayouts, by name (the NPU tiling's LayoutCode is checked against it).",
        *[f"constexpr uint32_t kLayoutIndex{name} = {i};" for i, name in enumerate(L.layouts)],
        f"constexpr uint32_t kLayoutCount = {len(L.layouts)};",
        f"constexpr const char kSabiPadText[] = \"0x{L.sabi_pad:X}\";  // kSabiPad as messages write it",
        "// The dtypes the NPU kernel accepts, per group, by the spec's names (the tiling's DataKind names).",
        f"constexpr const char *const kNpuQkvDtypes[] = {{{', '.join(json.dumps(d) for d in _group(QKV_GROUP).npu)}}};",
        f"constexpr const char *const kNpuMaskDtypes[] = {{{', '.join(json.dumps(d) for d in _group(MASK_GROUP).npu)}}};",
        "// The aclDataType values (include/acl/acl.h) the CPU device's aclnn layer accepts, per group.",
        _acl_dtype_set("kCpuQkvDtypes", _group(QKV_GROUP).cpu),
        _acl_dtype_set("kCpuMaskDtypes", _group(MASK_GROUP).cpu),
        "",
    ]
    lines += ["// The op attributes' defaults (what an unset attribute means; the tiling's tests start from them)."]
    lines += cpp_attr_defaults(ATTRS) + [""]
    lines += cpp_refusals(REFUSALS)
    return cpp_header(spec_path, about, REFUSAL_INCLUDES, ["blitz", "limits"], lines)


def _api_defaults() -> List[str]:
    attrs = {a.name: a for a in ATTRS}
    lines = ["# blitz_sparse_attention's defaults. Where one differs from the op attribute it feeds (the C",
             "# ABI's default), the spec says why:"]
    for d in API_DEFAULTS:
        attr = attrs[d.attr] if d.attr else None
        differs = attr is not None and attr.default != d.value
        if differs and not d.note:
            raise ValueError(f"aclnn_gen: API default {d.name}={d.value!r} differs from attribute "
                             f"{attr.name}={attr.default!r} without a note")
        if differs:
            lines.append(f"#   {d.name}: {d.value!r}, not the attribute's {attr.default!r}: {d.note}")
    lines.append("")
    for d in API_DEFAULTS:
        lines.append(f"DEFAULT_{d.name.upper()} = {d.value!r}")
    lines += ["", "# The op attributes' own defaults (the original's; what an unset attribute means at the C ABI).",
              "ATTR_DEFAULTS = {"]
    lines += [f"    {a.name!r}: {a.default!r}," for a in ATTRS]
    lines.append("}")
    return lines


def render_limits_module(spec_path: str) -> str:
    L = LIMITS
    lines = [
        f'"""generated by aclnn_gen from {spec_path}: do not edit',
        "",
        "BlitzSparseAttention's limits, refusal messages and API defaults, stated once in the spec (the",
        'C++ checks read the same from kernel_src/common/op_limits.h and op_refusals.h)."""',
        "",
        f"BLOCK_Q = {L.block_q!r}",
        f"BLOCK_KV_STEP = {L.block_kv_step}",
        f"BLOCK_KV_MAX = {L.block_kv_max}",
        f"C_ABI_DEFAULT_BLOCK_SHAPE = {L.c_abi_default_block!r}  # what a NULL blockShape means",
        f"BLOCK_SHAPE_RULE = {L.block_shape_rule()!r}",
        "",
        f"CPU_HEAD_DIM_MAX = {L.cpu_head_dim_max}",
        f"NPU_HEAD_DIM_MIN = {L.npu_head_dim_min}",
        f"NPU_HEAD_DIM_MAX = {L.npu_head_dim_max}",
        f"NPU_HEAD_DIM_ALIGN = {L.npu_head_dim_align}",
        "",
        "# The NPU kernel's heads, GQA group (N / Nkv) and batch; the CPU device has no upper limit.",
        f"NPU_HEADS_MAX = {L.npu_heads_max}",
        f"NPU_GROUP_MAX = {L.npu_group_max}",
        f"NPU_BATCH_MAX = {L.npu_batch_max}",
        "",
        f"SABI_PAD = 0x{L.sabi_pad:X}",
        f"NPU_KV_BLOCKS_MAX = SABI_PAD - 1  # uint16 indices; SABI_PAD is \"no block\"",
        "",
        f"LAYOUTS = {L.layouts!r}",
        f"PACKED_LAYOUT = {L.packed_layout!r}",
        "# Each layout's query / key / value axes, in order: B batch, N heads, S sequence, D head dim,",
        "# H = N * D in one axis (num_heads gives N), T every batch's tokens back to back (packed).",
        "LAYOUT_AXES = {",
        *[f"    {x.name!r}: {x.axes!r}," for x in LAYOUT_TABLE],
        "}",
        "# The layout attention_out is written in, per input layout.",
        "LAYOUT_OUTPUT = {",
        *[f"    {x.name!r}: {x.output_layout!r}," for x in LAYOUT_TABLE],
        "}",
        f"SPARSE_MODES = {L.sparse_modes!r}",
        f"TORCH_BSA_PRECISE_OFFSET = {L.torch_bsa_precise_offset}  # torch_bsa's sparse_mode + 10 = inner_precise 0",
        f"INNER_PRECISE_MAX = {L.inner_precise_max}",
        "",
        "# dtypes per device (names as blitz_acl.arrays spells them)",
        f"CPU_DTYPES = {_group(QKV_GROUP).cpu!r}",
        f"NPU_DTYPES = {_group(QKV_GROUP).npu!r}",
        f"MASK_DTYPES = {_group(MASK_GROUP).cpu!r}",
        f"NPU_MASK_DTYPES = {_group(MASK_GROUP).npu!r}",
        "",
        f"CPU_TITLE = {L.cpu_title!r}",
        f"NPU_TITLE = {L.npu_title!r}",
        "",
    ] + _api_defaults() + [
        "",
        "",
        "def block_shape_supported(bq: int, bkv: int) -> bool:",
        "    return bq in BLOCK_Q and BLOCK_KV_STEP <= bkv <= BLOCK_KV_MAX and bkv % BLOCK_KV_STEP == 0",
        "",
        "",
        "def npu_head_dim_supported(d: int) -> bool:",
        "    return NPU_HEAD_DIM_MIN <= d <= NPU_HEAD_DIM_MAX and d % NPU_HEAD_DIM_ALIGN == 0",
        "",
        "",
        "# Readers of the layout table, so no module spells what a layout name means.",
        "def layout_rank(layout: str) -> int:",
        "    return len(LAYOUT_AXES[layout])",
        "",
        "",
        "def layout_dims(layout: str) -> str:",
        "    \"\"\"The axes as messages write them, e.g. '[B, S, N*D]'.\"\"\"",
        "    return \"[\" + \", \".join(\"N*D\" if a == \"H\" else a for a in LAYOUT_AXES[layout]) + \"]\"",
        "",
        "",
        "def axis(layout: str, name: str) -> int:",
        "    \"\"\"The index of axis `name` (B, N, S, D, H or T) in a tensor of `layout`.\"\"\"",
        "    return LAYOUT_AXES[layout].index(name)",
        "",
        "",
        "def output_layout(layout: str) -> str:",
        "    return LAYOUT_OUTPUT[layout]",
        "",
        "",
        "def is_packed(layout: str) -> bool:",
        "    return layout == PACKED_LAYOUT",
        "",
        "",
        "def has_fused_heads(layout: str) -> bool:",
        "    \"\"\"Heads and head dim in one axis (H = N * D): the head count comes from num_heads.\"\"\"",
        "    return \"H\" in LAYOUT_AXES[layout]",
        "",
        "",
        "def seq_axis(layout: str) -> int:",
        "    \"\"\"The sequence axis (S; T when packed).\"\"\"",
        "    return axis(layout, \"T\" if is_packed(layout) else \"S\")",
        "",
        "",
        "def is_head_major(layout: str) -> bool:",
        "    \"\"\"Heads before the sequence (a [B, N, S, D] tensor as it is).\"\"\"",
        "    axes = LAYOUT_AXES[layout]",
        "    return \"N\" in axes and axes.index(\"N\") < seq_axis(layout)",
        "",
        "",
        "# Refusal messages (the same words as kernel_src/common/op_refusals.h).",
        "",
    ]
    return "\n".join(lines + py_refusals(REFUSALS) + [""])
