"""Renders the C declarations: the public headers and the cffi cdef come from `declarations()`.

All are pure functions of spec.py and acl_api.py. The four headers (acl/acl.h, aclnn/acl_meta.h,
aclnnop/aclnn_blitz_sparse_attention.h, blitz_acl/blitz_cpu.h) each declare their own part, with
include guards, extern "C" and comments; the cdef concatenates the same parts without comments.
"""

from __future__ import annotations

from typing import List, Tuple

from . import acl_api
from .acl_api import Function
from .spec import ABI_VERSION, OP, OPS, SELECT_OP, OpSpec, TensorArg

ATTR_C_TYPES = {
    "int": "int64_t",
    "float": "double",
    "str": "char *",
    "bool": "bool",
    "list_int": "const aclIntArray *",
}


def _tensor_c_type(t: TensorArg) -> str:
    return "const aclIntArray *" if t.host_int_array else "const aclTensor *"


def _attr_c_type(kind: str) -> str:
    try:
        return ATTR_C_TYPES[kind]
    except KeyError:
        raise ValueError(f"aclnn_gen: attribute type {kind!r} has no C type") from None


def _param_doc(t: TensorArg) -> str:
    bits = ["optional" if t.optional else "required"]
    if not t.supported:
        bits.append("must be NULL (not supported)")
    if t.note:
        bits.append(t.note)
    return ", ".join(bits)


def op_functions(op: OpSpec) -> Tuple[Function, Function]:
    """The two-phase pair aclnn<Op>GetWorkspaceSize / aclnn<Op> in CANN's parameter order:
    inputs by index, attributes, outputs, then workspace size and executor."""
    params = []
    docs = []
    for t in op.inputs:
        params.append((_tensor_c_type(t), t.c_name))
        docs.append(f"{t.c_name}: input {op.input_index(t.name)}, {_param_doc(t)}")
    for a in op.attrs:
        params.append((_attr_c_type(a.kind), a.c_name))
        default = "required" if a.required else f"default {_c_literal(a.default)}"
        docs.append(f"{a.c_name}: {default}" + (f"; {a.note}" if a.note else ""))
    for t in op.outputs:
        params.append((_tensor_c_type(t), t.c_name))
        docs.append(f"{t.c_name}: output" + (f", {t.note}" if t.note else ""))
    params += [("uint64_t *", "workspaceSize"), ("aclOpExecutor **", "executor")]
    get_size = Function("aclnnStatus", f"aclnn{op.op_type}GetWorkspaceSize", tuple(params),
                        "\n".join(docs))
    run = Function("aclnnStatus", f"aclnn{op.op_type}", (
        ("void *", "workspace"), ("uint64_t", "workspaceSize"), ("aclOpExecutor *", "executor"),
        ("const aclrtStream", "stream")),
        "enqueues the op on stream; frees a non-repeatable executor; the workspace must live "
        "until the stream has finished")
    return get_size, run


def declarations():
    """Everything both outputs declare, in order: (section, items)."""
    op_funcs: List[Function] = []
    for op in OPS:
        op_funcs.extend(op_functions(op))
    return {
        "constants": acl_api.STATUS_CODES,
        "blitz_constants": acl_api.BLITZ_CONSTANTS,
        "enums": acl_api.ENUMS,
        "runtime": acl_api.RUNTIME_FUNCTIONS + acl_api.OPBASE_FUNCTIONS,
        "op": tuple(op_funcs),
        "blitz": acl_api.BLITZ_FUNCTIONS,
    }


def _param(ctype: str, name: str) -> str:
    return f"{ctype}{name}" if ctype.endswith("*") else f"{ctype} {name}"


LINE_WIDTH = 100


def _prototype(f: Function, indent: str = "    ") -> str:
    head = _param(f.ret, f.name)
    if not f.params:
        return f"{head}(void);"
    one_line = f"{head}({', '.join(_param(t, n) for t, n in f.params)});"
    if len(one_line) <= LINE_WIDTH:
        return one_line
    args = ",\n".join(indent + _param(t, n) for t, n in f.params)
    return f"{head}(\n{args});"


def _c_literal(value) -> str:
    """An attribute default as C would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "{" + ", ".join(str(v) for v in value) + "}"
    return repr(value)


def _comment(text: str) -> List[str]:
    if not text:
        return []
    lines = text.splitlines()
    if len(lines) == 1:
        return [f"/* {lines[0]} */"]
    return ["/*"] + [f" * {line}" for line in lines] + [" */"]


def _scalar_typedefs(names, for_cffi: bool) -> List[str]:
    return [f"typedef {_param(ctype, name)};" + ("" if for_cffi else f"  /* {source} */")
            for ctype, name, source in acl_api.SCALAR_TYPEDEFS if name in names]


def _constants(groups, for_cffi: bool) -> List[str]:
    out = []
    for group in groups:
        if not for_cffi:
            out += ["", f"/* from {group.source} */"]
        out += [f"#define {c.name} {c.value}" for c in group.constants]
    return out


def _enums(enums, for_cffi: bool) -> List[str]:
    out = []
    for enum in enums:
        if not for_cffi:
            out += ["", f"/* from {enum.source} */"]
        out.append("typedef enum {")
        out += [f"    {m.name} = {m.value}," for m in enum.members]
        out.append(f"}} {enum.name};")
    return out


# What each header declares. acl/acl.h: the ACL runtime subset (libascendcl's part);
# aclnn/acl_meta.h: opbase's descriptors (libnnopbase's part); the op header: the entry points;
# blitz_acl/blitz_cpu.h: the CPU device library's own exports. Each declaration sits in one of
# them only, and the cffi cdef concatenates the four bodies.
def _acl_body(for_cffi: bool) -> List[str]:
    d = declarations()
    acl_status = [g for g in d["constants"] if g.source.startswith("acl/")]
    out = _scalar_typedefs(("aclError", "aclrtStream"), for_cffi) + _constants(acl_status, for_cffi)
    out += _enums(d["enums"], for_cffi)
    return out + _functions_block(acl_api.RUNTIME_FUNCTIONS, for_cffi)


def _meta_body(for_cffi: bool) -> List[str]:
    d = declarations()
    nn_status = [g for g in d["constants"] if g.source.startswith("aclnn/")]
    out = _scalar_typedefs(("aclnnStatus",), for_cffi)
    out += [f"typedef struct {name} {name};" for name in acl_api.OPAQUE_TYPES]
    out += _constants(nn_status, for_cffi)
    return out + _functions_block(acl_api.OPBASE_FUNCTIONS, for_cffi)


def _op_body(for_cffi: bool, op: OpSpec = OP) -> List[str]:
    return _functions_block(op_functions(op), for_cffi)


def _blitz_body(for_cffi: bool) -> List[str]:
    d = declarations()
    out = _constants([d["blitz_constants"]], for_cffi)
    return out + _functions_block(acl_api.BLITZ_FUNCTIONS, for_cffi)


def _functions_block(funcs, for_cffi: bool) -> List[str]:
    out = []
    for f in funcs:
        if not for_cffi:
            out += [""] + _comment(f.doc)
        out.append(_prototype(f))
    return out


def _header(spec_path: str, guard: str, about: List[str], includes: List[str], body: List[str]) -> str:
    lines = [f"/* generated by aclnn_gen from {spec_path}: do not edit */", "/*"]
    lines += [f" * {line}" if line else " *" for line in about]
    lines += [" */", f"#ifndef {guard}", f"#define {guard}", ""]
    lines += includes + ["", "#ifdef __cplusplus", 'extern "C" {', "#endif"]
    lines += body
    lines += ["", "#ifdef __cplusplus", "}", "#endif", "", f"#endif  /* {guard} */", ""]
    return "\n".join(lines)


def render_acl_header(spec_path: str) -> str:
    return _header(spec_path, "BLITZ_ACL_ACL_H_", [
        "acl/acl.h of the CPU device: the subset of CANN's ACL runtime (acl/acl.h, acl/acl_base.h,",
        "acl/acl_rt.h) that libblitz_cpu.so serves, under CANN's names, signatures and values, so a",
        "CANN program builds against it with only its include path and link line changed.",
    ], ["#include <stddef.h>", "#include <stdint.h>"], _acl_body(False))


def render_meta_header(spec_path: str) -> str:
    return _header(spec_path, "BLITZ_ACL_ACLNN_ACL_META_H_", [
        "aclnn/acl_meta.h of the CPU device: the opbase subset (aclTensor, aclIntArray, executors,",
        "aclnn status codes) that libblitz_cpu.so serves, under CANN's names and values.",
    ], ['#include "acl/acl.h"'], _meta_body(False))


def _guard(op: OpSpec) -> str:
    """ACLNN_BLITZ_SPARSE_ATTENTION_H_ from include/aclnnop/aclnn_blitz_sparse_attention.h."""
    return op.header.rsplit("/", 1)[-1].replace(".", "_").upper() + "_"


def _render_op_header(spec_path: str, op: OpSpec) -> str:
    return _header(spec_path, _guard(op), list(op.about),
                   ["#include <stdbool.h>", "#include <stdint.h>", "", '#include "aclnn/acl_meta.h"'],
                   _op_body(False, op))


def render_op_header(spec_path: str) -> str:
    return _render_op_header(spec_path, OP)


def render_select_header(spec_path: str) -> str:
    return _render_op_header(spec_path, SELECT_OP)


def render_blitz_header(spec_path: str) -> str:
    return _header(spec_path, "BLITZ_ACL_BLITZ_CPU_H_", [
        "The CPU device library's own exports (not CANN's): its ABI version, a device description,",
        "the device settings a caller passes down (kernel path and threads, memory capacity) and",
        "live handle counts.",
    ], ['#include "acl/acl.h"'], _blitz_body(False))


def render_cdef_module(spec_path: str) -> str:
    body = _acl_body(True) + _meta_body(True) + [line for op in OPS for line in _op_body(True, op)]
    body += _blitz_body(True)
    cdef = "\n".join(body)
    return (
        f'"""generated by aclnn_gen from {spec_path}: do not edit\n\n'
        "The cffi (ABI mode) declarations of the device library: CANN's runtime subset, the\n"
        'BlitzSparseAttention and BlitzSelectBlocks entry points and the CPU device\'s own\n'
        'exports."""\n\n'
        f"ABI_VERSION = {ABI_VERSION}\n\n"
        f'CDEF = """\n{cdef}\n"""\n'
    )
