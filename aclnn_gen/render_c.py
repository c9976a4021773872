"""Renders the C declarations: the public header and the cffi cdef come from `declarations()`.

Both are pure functions of spec.py and acl_api.py; the header adds include guards, extern "C",
and comments, the cdef keeps only what cffi parses.
"""

from __future__ import annotations

from typing import List, Tuple

from . import acl_api
from .acl_api import Function
from .spec import ABI_VERSION, OPS, OpSpec, TensorArg

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


def _types_block(decls, for_cffi: bool) -> List[str]:
    out = []
    for ctype, name, source in acl_api.SCALAR_TYPEDEFS:
        out.append(f"typedef {_param(ctype, name)};" + ("" if for_cffi else f"  /* {source} */"))
    for name in acl_api.OPAQUE_TYPES:
        out.append(f"typedef struct {name} {name};")
    for group in decls["constants"]:
        if not for_cffi:
            out += ["", f"/* from {group.source} */"]
        for c in group.constants:
            out.append(f"#define {c.name} {c.value}")
    for enum in decls["enums"]:
        if not for_cffi:
            out += ["", f"/* from {enum.source} */"]
        out.append("typedef enum {")
        out += [f"    {m.name} = {m.value}," for m in enum.members]
        out.append(f"}} {enum.name};")
    return out


def _functions_block(funcs, for_cffi: bool) -> List[str]:
    out = []
    for f in funcs:
        if not for_cffi:
            out += [""] + _comment(f.doc)
        out.append(_prototype(f))
    return out


def render_header(spec_path: str) -> str:
    d = declarations()
    lines = [
        f"/* generated by aclnn_gen from {spec_path}: do not edit */",
        "/*",
        " * BlitzSparseAttention: the aclnn two-phase C API (original parameter list and V2),",
        " * the subset of CANN's ACL runtime and opbase it is called with, and the CPU device",
        " * library's own exports. Names, signatures and enum values are CANN's, so a caller",
        " * written against this header also builds against CANN (define",
        " * BLITZ_ACL_USE_CANN_HEADERS to take the types from CANN's headers instead).",
        " */",
        "#ifndef ACLNN_BLITZ_SPARSE_ATTENTION_H_",
        "#define ACLNN_BLITZ_SPARSE_ATTENTION_H_",
        "",
        "#include <stdbool.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "#ifdef BLITZ_ACL_USE_CANN_HEADERS",
        '#include "acl/acl.h"',
        '#include "aclnn/acl_meta.h"',
        "#else",
        "",
    ]
    lines += _types_block(d, for_cffi=False)
    lines += ["", "#ifdef __cplusplus", 'extern "C" {', "#endif"]
    lines += _functions_block(d["runtime"], for_cffi=False)
    lines += ["", "#ifdef __cplusplus", "}", "#endif", "#endif  /* BLITZ_ACL_USE_CANN_HEADERS */", ""]
    lines += _comment(f"from {d['blitz_constants'].source}")
    lines += [f"#define {c.name} {c.value}" for c in d["blitz_constants"].constants] + [""]
    lines += ["#ifdef __cplusplus", 'extern "C" {', "#endif"]
    lines += _functions_block(d["op"], for_cffi=False)
    lines += ["", "/* CPU device library only (libblitz_cpu.so) */"]
    lines += _functions_block(d["blitz"], for_cffi=False)
    lines += ["", "#ifdef __cplusplus", "}", "#endif", "",
              "#endif  /* ACLNN_BLITZ_SPARSE_ATTENTION_H_ */", ""]
    return "\n".join(lines)


def render_cdef_module(spec_path: str) -> str:
    d = declarations()
    body = _types_block(d, for_cffi=True)
    body += [f"#define {c.name} {c.value}" for c in d["blitz_constants"].constants]
    for section in ("runtime", "op", "blitz"):
        body += _functions_block(d[section], for_cffi=True)
    cdef = "\n".join(body)
    return (
        f'"""generated by aclnn_gen from {spec_path}: do not edit\n\n'
        "The cffi (ABI mode) declarations of the device library: CANN's runtime subset, the\n"
        'BlitzSparseAttention entry points and the CPU device\'s own exports."""\n\n'
        f"ABI_VERSION = {ABI_VERSION}\n\n"
        f'CDEF = """\n{cdef}\n"""\n'
    )
