"""The BlitzSparseAttention op specification: the one declaration every generated file comes from.

Names, input indices, attribute order and defaults follow the newest revision of the original
ops-transformer operator (shared/CANN_FACTS.md, "The original operator";
experimental/attention/blitz_sparse_attention/docs/aclnnBlitzSparseAttention.md): its later
revision added softmax_lse_flag and block_shape after inner_precise and softmax_lse after
attention_out to the same unsuffixed op, 27 aclnn parameters in all. opbuild orders the aclnn
parameters as inputs, attributes, outputs, so this order yields exactly that prototype.
Where our defaults differ from the original's on purpose, the attribute's note says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

# Bumped whenever a generated prototype or the meaning of an argument changes; the library
# exports it (blitzAclAbiVersion) and the binding refuses a library built for another version.
# 2: one 27-parameter entry point (the V2 names and the 24-parameter list are gone)
# 3: BlitzSelectBlocks' entry points (the CPU device's block selection) added
# 4: blitzCpuSetKernelSettings (device settings passed down, not read inside the kernel)
# 5: BlitzSelectBlocks takes sparseMode / preTokens / nextTokens (the attention's mask)
# 6: blitzCpuSetMemoryCapacity, and npu_sim's blitzNpuSimSetVectorCores (settings passed down,
#    no longer read from the environment by the libraries)
# 7: aclrtSynchronizeStreamWithTimeout (the binding waits in slices without a waiter thread)
ABI_VERSION = 7

# dtype groups: inputs tied to one group take the same dtype in every supported combination.
# "npu" lists what the Ascend op accepts; "cpu" what the CPU device library accepts.
QKV_GROUP = "qkv"
MASK_GROUP = "mask"


@dataclass(frozen=True)
class DtypeGroup:
    name: str
    npu: Tuple[str, ...]
    cpu: Tuple[str, ...]


DTYPE_GROUPS = (
    DtypeGroup(QKV_GROUP, npu=("float16", "bfloat16"), cpu=("float32", "float16", "bfloat16")),
    DtypeGroup(MASK_GROUP, npu=("bool", "int8", "uint8"), cpu=("bool", "int8", "uint8")),
)


@dataclass(frozen=True)
class TensorArg:
    """One tensor input or output. `dtypes` is a group name or a fixed tuple of dtypes."""

    name: str  # op-def name (snake_case)
    c_name: str  # aclnn parameter name (camelCase)
    dtypes: Union[str, Tuple[str, ...]]
    optional: bool = False
    host_int_array: bool = False  # passed as `const aclIntArray *` (values read on the host)
    supported: bool = True  # False: accepted by the signature, rejected when non-null
    note: str = ""


@dataclass(frozen=True)
class AttrArg:
    name: str
    c_name: str
    kind: str  # "int", "float", "str", "bool", "list_int"
    default: Union[int, float, str, bool, Tuple[int, ...]]
    required: bool = False
    note: str = ""


@dataclass(frozen=True)
class OpSpec:
    op_type: str  # CANN op type; the aclnn entry points are aclnn<op_type>[GetWorkspaceSize]
    inputs: Tuple[TensorArg, ...]  # in index order
    attrs: Tuple[AttrArg, ...]
    outputs: Tuple[TensorArg, ...]
    formats: Tuple[str, ...] = ("ND",)
    socs: Tuple[str, ...] = ("ascend910b", "ascend910_93")
    # False: the CPU device library only (no OpDef in the NPU custom-op package yet).
    npu: bool = True
    header: str = ""  # the public header declaring the op's entry points (include/...)
    about: Tuple[str, ...] = ()  # that header's opening comment

    def input_index(self, name: str) -> int:
        return [t.name for t in self.inputs].index(name)


INPUTS = (
    TensorArg("query", "query", QKV_GROUP),
    TensorArg("key", "key", QKV_GROUP),
    TensorArg("value", "value", QKV_GROUP),
    TensorArg("pse_shift", "pseShift", QKV_GROUP, optional=True, supported=False),
    TensorArg("atten_mask", "attenMask", MASK_GROUP, optional=True),
    TensorArg("sabi", "sabi", ("uint16",), optional=True,
              note="[Bs, Ns, ceil(Sq/bq), W] or [Ns, ceil(Sq/bq), W]; 0xFFFF = no block"),
    TensorArg("actual_seq_lengths", "actualSeqLengths", ("int64",), optional=True,
              host_int_array=True),
    TensorArg("actual_seq_lengths_kv", "actualSeqLengthsKv", ("int64",), optional=True,
              host_int_array=True),
    TensorArg("deq_scale1", "deqScale1", ("uint64",), optional=True, supported=False),
    TensorArg("quant_scale1", "quantScale1", ("float32",), optional=True, supported=False),
    TensorArg("deq_scale2", "deqScale2", ("uint64",), optional=True, supported=False),
    TensorArg("quant_scale2", "quantScale2", ("float32",), optional=True, supported=False),
    TensorArg("quant_offset2", "quantOffset2", ("float32",), optional=True, supported=False),
)

ATTRS = (
    AttrArg("num_heads", "numHeads", "int", 1, required=True),
    AttrArg("scale_value", "scaleValue", "float", 1.0),
    # The original writes 214748647 (a digit short of INT32_MAX); the intent is "unbounded".
    AttrArg("pre_tokens", "preTokens", "int", 2147483647,
            note="band width before the diagonal (sparse_mode 4)"),
    AttrArg("next_tokens", "nextTokens", "int", 0,
            note="band width after the diagonal (sparse_mode 4)"),
    AttrArg("input_layout", "inputLayout", "str", "BSH",
            note="BNSD, BSND, BSH, BNSD_BSND or TND (packed; cumulative actual lengths)"),
    AttrArg("num_key_value_heads", "numKeyValueHeads", "int", 0, note="0 means num_heads"),
    AttrArg("sparse_mode", "sparseMode", "int", 0, note="0-4, see DESIGN.md"),
    AttrArg("inner_precise", "innerPrecise", "int", 1),
)

# softmax_lse is OPTIONAL, as in the original: with softmax_lse_flag false a caller may pass NULL
# (an OPTIONAL output, asc-devkit docs/zh/api/Utils-API/原型注册与管理/OpParamDef/ParamType.md).
OUTPUTS = (
    TensorArg("attention_out", "attentionOut", QKV_GROUP),
    TensorArg("softmax_lse", "softmaxLse", ("float32",), optional=True,
              note="[B, N, Sq] float32, written only when softmaxLseFlag; else NULL or empty allowed"),
)

ATTRS = ATTRS + (
    AttrArg("softmax_lse_flag", "softmaxLseFlag", "bool", False,
            note="write softmaxLse; when false it is not written and may be NULL"),
    AttrArg("block_shape", "blockShape", "list_int", (128, 128),
            note="(bq, bkv); NULL or empty means (128, 128), as in the original"),
)

OP = OpSpec("BlitzSparseAttention", INPUTS, ATTRS, OUTPUTS,
            header="include/aclnnop/aclnn_blitz_sparse_attention.h", about=(
                "BlitzSparseAttention's aclnn two-phase entry points, with the newest original prototype",
                "(27 parameters). The same declarations serve both devices: with CANN, aclnn/acl_meta.h is",
                "CANN's (the NPU package's libcust_opapi.so implements these); on the CPU device it is",
                "ours (libblitz_cpu.so).",
            ))

# BlitzSelectBlocks: ours (the original has no selection op). Scores (query block, key block)
# pairs from query and key and writes the sabi BlitzSparseAttention takes, [B, N, R, C] with
# R = ceil(Sq / bq) and C = ceil(Skv / bkv) (TND: the longest batch's), each row its kept key
# blocks in ascending order, then 0xFFFF. Both devices: the CPU device library, and an Ascend C
# op in the NPU custom-op package (mean_pool with its refinement, and antidiagonal; no mask so
# far: SelectLimits).
SELECT_METHODS = ("mean_pool", "antidiagonal")
SELECT_INPUTS = (
    TensorArg("query", "query", QKV_GROUP),
    TensorArg("key", "key", QKV_GROUP),
    TensorArg("actual_seq_lengths", "actualSeqLengths", ("int64",), optional=True,
              host_int_array=True, note="as BlitzSparseAttention's (TND: cumulative, required)"),
    TensorArg("actual_seq_lengths_kv", "actualSeqLengthsKv", ("int64",), optional=True,
              host_int_array=True, note="as BlitzSparseAttention's (TND: cumulative, required)"),
)
SELECT_ATTRS = (
    AttrArg("num_heads", "numHeads", "int", 1, required=True),
    AttrArg("num_key_value_heads", "numKeyValueHeads", "int", 0, note="0 means num_heads"),
    AttrArg("input_layout", "inputLayout", "str", "BNSD", note="BNSD, BSND, BSH or TND"),
    AttrArg("scale_value", "scaleValue", "float", 0.0,
            note="the attention's softmax scale; 0 means 1/sqrt(D)"),
    AttrArg("block_shape", "blockShape", "list_int", (128, 128),
            note="(bq, bkv) of the attention call; NULL or empty means (128, 128), as there"),
    AttrArg("method", "method", "str", "mean_pool",
            note="mean_pool (block means, sub-block refinement) or antidiagonal (XAttention-style)"),
    AttrArg("mass", "mass", "float", 0.0,
            note="keep the fewest blocks whose estimated softmax mass reaches it, in (0, 1]; 0 = off"),
    AttrArg("top_k", "topK", "int", 0,
            note="keep at least this many blocks per row (anchors included), best first; 0 = off"),
    AttrArg("anchor_first", "anchorFirst", "int", 1, note="always keep key blocks 0..anchorFirst-1"),
    AttrArg("anchor_diagonal", "anchorDiagonal", "bool", True,
            note="always keep the key blocks holding the query block's own token positions"),
    AttrArg("anchor_last", "anchorLast", "bool", True, note="always keep the last valid key block"),
    AttrArg("share_kv_groups", "shareKvGroups", "bool", False,
            note="GQA: the query heads of one key head get one pattern (their mean mass)"),
    AttrArg("stride", "stride", "int", 8, note="antidiagonal: the cell side in tokens, 1..64"),
    AttrArg("sub_block", "subBlock", "int", 32,
            note="mean_pool: the refinement's sub-block size in tokens, 1..1024"),
    AttrArg("refine_below", "refineBelow", "float", 0.5,
            note="mean_pool: refine a block whose coherence is below it, in [0, 1]; 0 = never"),
    AttrArg("sparse_mode", "sparseMode", "int", 0,
            note="the attention's index mask to respect, as BlitzSparseAttention's: 0 none, 2 / 3 causal, 4 band"),
    AttrArg("pre_tokens", "preTokens", "int", 2147483647, note="band width before the diagonal (sparse_mode 4)"),
    AttrArg("next_tokens", "nextTokens", "int", 2147483647, note="band width after the diagonal (sparse_mode 4)"),
)
SELECT_OUTPUTS = (
    TensorArg("sabi", "sabi", ("uint16",),
              note="[B, N, R, C] uint16 contiguous; kept blocks ascending, then 0xFFFF"),
)

SELECT_OP = OpSpec("BlitzSelectBlocks", SELECT_INPUTS, SELECT_ATTRS, SELECT_OUTPUTS,
                   header="include/aclnnop/aclnn_blitz_select_blocks.h", about=(
                       "BlitzSelectBlocks' aclnn two-phase entry points (ours: block selection from",
                       "query and key, writing the sabi BlitzSparseAttention takes). The CPU device",
                       "(libblitz_cpu.so) and the NPU custom-op package's Ascend C op (run here by",
                       "libblitz_npu_sim.so) implement them; the NPU op takes a subset (SelectLimits).",
                   ))

OPS = (OP, SELECT_OP)


@dataclass(frozen=True)
class Layout:
    """One inputLayout: what its name means for the tensors' shapes. `axes` is the order of
    query / key / value's axes: B batch, N heads, S sequence, D head dim, H = N * D in one axis
    (the head count then comes from num_heads), T every batch's tokens back to back (packed: the
    batches come from cumulative actual lengths). `output` is the layout attention_out is written
    in (the same unless the name says otherwise)."""

    name: str
    axes: Tuple[str, ...]
    output: Optional[str] = None
    packed: bool = False

    @property
    def output_layout(self) -> str:
        return self.output or self.name


# Layouts, on every device, in the order the C ABI's parsers index them.
LAYOUT_TABLE: Tuple[Layout, ...] = (
    Layout("BNSD", ("B", "N", "S", "D")),
    Layout("BSND", ("B", "S", "N", "D")),
    Layout("BSH", ("B", "S", "H")),
    Layout("BNSD_BSND", ("B", "N", "S", "D"), output="BSND"),  # BNSD in, BSND out
    Layout("TND", ("T", "N", "D"), packed=True),  # packed varlen
)


def _check_layouts(table: Tuple[Layout, ...]) -> None:
    names = [x.name for x in table]
    if len(set(names)) != len(names):
        raise ValueError(f"aclnn_gen: layout names repeat: {names}")
    if sum(x.packed for x in table) != 1:
        raise ValueError("aclnn_gen: the readers expect exactly one packed layout")
    by_name = {x.name: x for x in table}
    for x in table:
        seq = "T" if x.packed else "S"
        heads = ("H",) if "H" in x.axes else ("N", "D")
        want = sorted(("B",) * (not x.packed) + (seq,) + heads)
        if sorted(x.axes) != want:
            raise ValueError(f"aclnn_gen: layout {x.name} axes {x.axes} are not a permutation of {want}")
        out = by_name.get(x.output_layout)
        if out is None or out.output_layout != out.name or out.packed != x.packed:
            raise ValueError(f"aclnn_gen: layout {x.name} writes its output in {x.output_layout}, "
                             "which must be a layout of the same kind that writes in itself")


_check_layouts(LAYOUT_TABLE)


@dataclass(frozen=True)
class Limits:
    """What the devices accept, stated once: rendered into kernel_src/common/op_limits.h (values;
    the NPU kernel's headers include it too), kernel_src/common/op_refusals.h (the refusal
    messages, for the CPU device's checks and the NPU tiling) and blitz_acl/limits.py (both, for
    Python's checks). A limit that names a device holds for that device only; "npu" covers the
    Ascend kernel and the npu_sim device, which runs the same tiling.

    Block shapes: the original's bq, bkv in {128, 256, 512, 1024} (every pair), plus our bq 64 and
    any bkv that is a multiple of 64 up to 1024, on both devices. NULL blockShape at the C ABI is
    the original's (128, 128); Python passes its own default, (128, 512), explicitly."""

    block_q: Tuple[int, ...] = (64, 128, 256, 512, 1024)
    block_kv_step: int = 64
    block_kv_max: int = 1024
    c_abi_default_block: Tuple[int, int] = (128, 128)
    # Head dim D: the CPU device takes 1..cpu_head_dim_max; the NPU kernel a multiple of
    # npu_head_dim_align in [npu_head_dim_min, npu_head_dim_max] (its cube fractal and UB budget).
    cpu_head_dim_max: int = 512
    npu_head_dim_min: int = 16
    npu_head_dim_max: int = 256
    npu_head_dim_align: int = 16
    # Heads, GQA group (N / Nkv) and batch on the NPU kernel: its task index and tiling arrays.
    # The CPU device has no upper limit on any of them (N >= 1, N % Nkv == 0 on both).
    npu_heads_max: int = 256
    npu_group_max: int = 64
    npu_batch_max: int = 65536
    # sabi's "no block" entry: the largest uint16; valid indices are below it, so Skv / bkv may
    # give at most sabi_pad - 1 key blocks on the NPU (whose tiling checks it before any read).
    sabi_pad: int = 0xFFFF
    # Layouts' names (LAYOUT_TABLE says what each means) and the packed one (TND = packed varlen).
    layouts: Tuple[str, ...] = tuple(x.name for x in LAYOUT_TABLE)
    packed_layout: str = next(x.name for x in LAYOUT_TABLE if x.packed)
    # Token masks (sparse_mode): 0 none / explicit, 1 explicit, 2-4 built from indices.
    sparse_modes: Tuple[int, ...] = (0, 1, 2, 3, 4)
    # torch_bsa encoded inner_precise = 0 as sparse_mode + 10; blitz_acl's API has no inner_precise.
    torch_bsa_precise_offset: int = 10
    # innerPrecise at the C ABI: PromptFlashAttention's range; the kernels always accumulate in fp32.
    inner_precise_max: int = 3
    # How refusal messages name the two device families.
    cpu_title: str = "CPU device"
    npu_title: str = "NPU kernel"

    def block_shape_rule(self) -> str:
        """The accepted block shapes in words, for every error message about them."""
        return f"bq {_words(self.block_q)}, and bkv a multiple of {self.block_kv_step} up to {self.block_kv_max}"

    def npu_head_dim_rule(self) -> str:
        return (f"a multiple of {self.npu_head_dim_align} in "
                f"[{self.npu_head_dim_min}, {self.npu_head_dim_max}]")


def _words(values) -> str:
    """(1, 2, 3) -> "1, 2 or 3"."""
    items = [str(v) for v in values]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" or {items[-1]}"


LIMITS = Limits()


@dataclass(frozen=True)
class ApiDefault:
    """A default of blitz_sparse_attention (the Python API). `attr` names the op attribute it
    feeds; where the two defaults differ, `note` says why (the renderer refuses a silent one)."""

    name: str
    value: Union[None, int, float, str, bool, Tuple[int, ...]]
    attr: Optional[str] = None
    note: str = ""


API_DEFAULTS = (
    ApiDefault("num_heads", None, "num_heads",
               note="read from the query's shape (required for BSH); the attribute's 1 fits only N = 1"),
    ApiDefault("num_key_value_heads", 0, "num_key_value_heads"),
    ApiDefault("input_layout", "BNSD", "input_layout",
               note="the original's attribute says BSH; BNSD is torch's [B, N, S, D] and FlashAttention's head-major order"),
    ApiDefault("scale_value", None, "scale_value",
               note="None means 1 / sqrt(D), softmax attention's usual scale; the attribute's 1.0 leaves scaling to the caller"),
    ApiDefault("sparse_mode", 0, "sparse_mode"),
    ApiDefault("pre_tokens", 2147483647, "pre_tokens"),
    ApiDefault("next_tokens", 2147483647, "next_tokens",
               note="unbounded after the diagonal, like pre_tokens; the attribute's 0 would make sparse_mode 4 causal by default"),
    ApiDefault("block_shape", (128, 512), "block_shape",
               note="the frame benchmark's 128 x 512 tiles; the attribute's (128, 128) is what a NULL blockShape means at the C ABI"),
    ApiDefault("return_lse", False, "softmax_lse_flag"),
)


@dataclass(frozen=True)
class Refusal:
    """One refusal message, the same text wherever a limit is checked: Python (blitz_acl/limits.py),
    the CPU device's checks and the NPU tiling (kernel_src/common/op_refusals.h). `params` are (name, kind)
    with kind "int" or "str"; `template` is a str.format template over them."""

    name: str
    params: Tuple[Tuple[str, str], ...]
    template: str


_SABI_AT = (("b", "int"), ("h", "int"), ("row", "int"), ("col", "int"), ("value", "int"))
_SABI_WHERE = "sabi[b={b}, h={h}, row={row}, col={col}] = {value}"


def _refusals(L: Limits):
    qkv_npu = next(g for g in DTYPE_GROUPS if g.name == QKV_GROUP).npu
    qkv_cpu = next(g for g in DTYPE_GROUPS if g.name == QKV_GROUP).cpu
    mask = next(g for g in DTYPE_GROUPS if g.name == MASK_GROUP)
    return (
        Refusal("block_shape", (("bq", "int"), ("bkv", "int"), ("device", "str")),
                "block_shape ({bq}, {bkv}) is not supported by the {device}: expected " + L.block_shape_rule()),
        Refusal("cpu_head_dim", (("head_dim", "int"),),
                f"head_dim {{head_dim}} is not supported by the {L.cpu_title}: expected 1..{L.cpu_head_dim_max}"),
        Refusal("npu_head_dim", (("head_dim", "int"),),
                f"head_dim {{head_dim}} is not supported by the {L.npu_title}: expected " + L.npu_head_dim_rule()),
        Refusal("npu_heads", (("num_heads", "int"),),
                f"num_heads {{num_heads}} is not supported by the {L.npu_title}: expected 1..{L.npu_heads_max}"),
        Refusal("npu_group", (("group", "int"),),
                f"num_heads / num_key_value_heads = {{group}} exceeds {L.npu_group_max}, the {L.npu_title}'s "
                "largest GQA group"),
        Refusal("npu_batch", (("batch", "int"),),
                f"batch {{batch}} is not supported by the {L.npu_title}: expected 1..{L.npu_batch_max}"),
        Refusal("npu_kv_blocks", (("kv_blocks", "int"),),
                f"Skv / bkv gives {{kv_blocks}} key blocks; sabi's uint16 indices allow {L.sabi_pad - 1}"),
        Refusal("npu_dtype", (),
                f"query, key and value must all be {_words(qkv_npu)} on the NPU"),
        Refusal("sparse_mode", (("mode", "int"),),
                f"sparse_mode must be one of {L.sparse_modes}, got {{mode}}"),
        Refusal("layout", (("layout", "str"),),
                f"input_layout must be one of {', '.join(L.layouts)}, got '{{layout}}'"),
        # Where the dtype is known (Python: "atten_mask", "float32"; the aclnn layer: "attenMask",
        # "ACL_FLOAT"); the NPU tiling only learns that the dtype is not one of the NPU's.
        Refusal("qkv_dtype", (("name", "str"), ("dtype", "str")),
                f"{{name}} has dtype {{dtype}}; expected one of {', '.join(qkv_cpu)}"),
        Refusal("mask_dtype", (("name", "str"), ("dtype", "str")),
                f"{{name}} has dtype {{dtype}}; expected one of {', '.join(mask.cpu)}"),
        Refusal("npu_mask_dtype", (),
                f"atten_mask must be {_words(mask.npu)}"),
        # One sabi entry (batch, head, query-block row, column) the device cannot take.
        Refusal("sabi_index", _SABI_AT + (("seq_kv", "int"), ("bkv", "int"), ("kv_blocks", "int")),
                _SABI_WHERE + ": key block index out of range; seq_kv={seq_kv} with bkv={bkv} has "
                f"C={{kv_blocks}} key blocks (valid: below C, or 0x{L.sabi_pad:X} / -1 for none)"),
        Refusal("sabi_repeat", _SABI_AT,
                _SABI_WHERE + ": key block {value} appears twice in this row; each row must list a block "
                "at most once"),
        # Padded layouts' actual lengths: 1 entry for every batch or >= B entries, each within the
        # tensor's sequence length. `name` as the side calls the list.
        Refusal("lengths_count", (("name", "str"), ("count", "int"), ("batch", "int")),
                "{name} has {count} entries; expected 1 or at least B={batch}"),
        Refusal("length_value", (("name", "str"), ("i", "int"), ("value", "int"), ("limit", "int")),
                "{name}[{i}] = {value} is outside [0, {limit}] (the tensor's sequence length)"),
        # An explicit mask in one of the original's forms; `shape` as the side writes a shape.
        Refusal("mask_shape", (("name", "str"), ("shape", "str"), ("batch", "int"), ("heads", "int"),
                               ("seq_q", "int"), ("seq_kv", "int")),
                "{name} has shape {shape}; expected [Sq', Skv'], [1 or B, Sq', Skv'] or [1 or B, 1 or N, Sq', Skv'] "
                "with Sq' >= Sq, Skv' >= Skv (the top-left window is used), B={batch}, N={heads}, Sq={seq_q}, "
                "Skv={seq_kv}"),
        # TND (packed): the cumulative length lists (each one, then the pair), and the explicit
        # masks it does not take. `name` as the side calls the list (the aclnn layer: its C name).
        Refusal("packed_required", (("name", "str"),),
                f"{{name}} is required with input_layout {L.packed_layout} (cumulative token counts, one per batch)"),
        Refusal("packed_entry", (("name", "str"), ("b", "int"), ("value", "int"), ("previous", "int"),
                                 ("tokens", "int")),
                f"{{name}}[{{b}}] = {{value}}: {L.packed_layout} lengths are cumulative, so each entry must lie in "
                "[the previous entry {previous}, T={tokens}]"),
        Refusal("packed_end", (("name", "str"), ("end", "int"), ("tokens", "int")),
                f"{{name}} ends at {{end}} but the tensor holds T={{tokens}} tokens; with input_layout "
                f"{L.packed_layout} the last cumulative entry is T (every token belongs to a batch)"),
        Refusal("packed_lengths", (("kv_count", "int"), ("q_count", "int")),
                "actual_seq_lengths_kv has {kv_count} entries but actual_seq_lengths has {q_count}; with "
                f"input_layout {L.packed_layout} both give one cumulative entry per batch"),
        Refusal("packed_mask", (),
                f"atten_mask with sparse_mode 0 or 1 is not supported with input_layout {L.packed_layout} "
                "(use sparse_mode 2-4, or no mask)"),
        # GQA / MQA: every key head serves the same number of query heads. Names as the side calls
        # the two head counts (the aclnn layer: numHeads, numKeyValueHeads).
        Refusal("gqa", (("heads_name", "str"), ("heads", "int"), ("kv_name", "str"), ("kv_heads", "int")),
                "{heads_name}={heads} is not a multiple of {kv_name}={kv_heads} (GQA / MQA)"),
        # BSH's last dim H = N x D.
        Refusal("bsh_hidden", (("name", "str"), ("hidden", "int"), ("heads", "int")),
                "{name} hidden size {hidden} is not a multiple of its {heads} heads"),
        # BSH packs the heads into the last dim, so only num_heads can split it (Python's API: the
        # C ABI's numHeads is never absent).
        Refusal("bsh_heads", (), "num_heads is required for input_layout='BSH' (query is [B, S, N*D])"),
        Refusal("inner_precise", (("inner_precise", "int"),),
                f"innerPrecise = {{inner_precise}}; expected 0..{L.inner_precise_max}"),
    )


REFUSALS = _refusals(LIMITS)


def group(name: str) -> Optional[DtypeGroup]:
    for g in DTYPE_GROUPS:
        if g.name == name:
            return g
    return None


@dataclass(frozen=True)
class SelectLimits:
    """BlitzSelectBlocks' own limits, rendered into kernel_src/cpu/select/select_limits.h (the
    op's checks) and blitz_acl/select_limits.py (select_blocks' checks and defaults)."""

    methods: Tuple[str, ...] = SELECT_METHODS
    stride_max: int = 64  # an antidiagonal cell is at most 64 x 64 tokens
    sub_block_max: int = 1024  # the largest block
    # The Ascend C op (kernel_src/npu/op_kernel/select_kernel.h) so far: both methods (mean_pool
    # with the sub-block refinement, antidiagonal), fp16 / bf16, the attention kernel's head
    # dims, no mask; the rest is the CPU device's only, refused on the NPU (npu_sim) in these words.
    npu_methods: Tuple[str, ...] = ("mean_pool", "antidiagonal")
    # The attention's index masks the choice can respect (mode 1 needs an explicit atten_mask,
    # which the selection does not take; mode 0's optional one is not seen either).
    sparse_modes: Tuple[int, ...] = (0, 2, 3, 4)

    def default(self, name: str):
        return next(a.default for a in SELECT_ATTRS if a.name == name)


SELECT_LIMITS = SelectLimits()


def _select_refusals(L: SelectLimits):
    qkv_npu = next(g for g in DTYPE_GROUPS if g.name == QKV_GROUP).npu
    return (
        Refusal("select_npu_method", (("method", "str"),),
                f"select_blocks method '{{method}}' is not supported by the {LIMITS.npu_title} yet: expected "
                f"{_words(L.npu_methods)} (the others run on the CPU device only)"),
        Refusal("select_npu_mask", (("mode", "int"),),
                f"select_blocks on the {LIMITS.npu_title} does not see the attention's mask yet (sparse_mode "
                "{mode}): pass sparse_mode=0 (the masked selection runs on the CPU device only)"),
        Refusal("select_npu_dtype", (),
                f"select_blocks takes query and key as {_words(qkv_npu)} on the NPU"),
        Refusal("select_npu_kv_blocks", (("kv_blocks", "int"), ("most", "int")),
                f"Skv / bkv gives {{kv_blocks}} key blocks; the {LIMITS.npu_title}'s select_blocks keeps one row "
                "of block scores in the unified buffer, which holds at most {most}"),
    )


SELECT_REFUSALS = _select_refusals(SELECT_LIMITS)

# BlitzSelectBlocks' selection rule as both C sides check it (the CPU device's checks and the NPU
# op's plan; kernel_src/common/select_refusals.h), by the C attribute names. Python's select_blocks
# words its own keyword arguments. Floats come as the side prints them.
SELECT_RULE_REFUSALS = (
    Refusal("select_mass", (("mass", "str"),), "mass = {mass}; expected 0 (off) or a share in (0, 1]"),
    Refusal("select_top_k", (("top_k", "int"),), "topK = {top_k}; expected >= 0 (0 = off)"),
    Refusal("select_rule_off", (), "mass and topK are both off (0); give a mass in (0, 1], a topK >= 1, or both"),
    Refusal("select_anchor_first", (("anchor_first", "int"),), "anchorFirst = {anchor_first}; expected >= 0"),
    Refusal("select_refine_below", (("refine_below", "str"),),
            "refineBelow = {refine_below}; expected a coherence in [0, 1] (0 = never refine)"),
    Refusal("select_stride", (("stride", "int"),),
            f"stride = {{stride}}; expected 1..{SELECT_LIMITS.stride_max} (the antidiagonal cell side in tokens)"),
)

# BlitzSelectBlocks' refusals on every device (Python's select_blocks and the CPU device's checks,
# kernel_src/cpu/select/select_limits.h); SELECT_REFUSALS are the NPU op's own.
SELECT_CPU_REFUSALS = (
    Refusal("select_kv_blocks", (("seq_kv", "int"), ("bkv", "int"), ("kv_blocks", "int")),
            f"Skv={{seq_kv}} with bkv={{bkv}} has {{kv_blocks}} key blocks; a uint16 sabi indexes at most "
            f"{LIMITS.sabi_pad}"),
)
