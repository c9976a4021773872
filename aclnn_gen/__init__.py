"""aclnn_gen: one op specification (spec.py) -> the generated C headers, cffi cdef and OpDef.

`python -m aclnn_gen` writes the outputs; `python -m aclnn_gen --check` exits non-zero when a
committed output differs from what the spec generates now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict

from .render_c import (render_acl_header, render_blitz_header, render_cdef_module,
                       render_meta_header, render_op_header, render_select_header)
from .render_args import (render_args_module, render_op_args_header, render_op_export, render_select_args_header,
                          render_select_export)
from .render_limits import render_limits_header, render_limits_module, render_refusals_header
from .render_opdef import render_indices, render_opdef, render_select_indices
from .render_select import (render_select_limits_header, render_select_limits_module, render_select_npu_header,
                            render_select_refusals_header)

SPEC_PATH = "aclnn_gen/spec.py"  # as named in the generated files' first line
REPO_ROOT = Path(__file__).resolve().parent.parent

# Output path (relative to the repository root) -> renderer.
OUTPUTS: Dict[str, Callable[[str], str]] = {
    # The public headers, where a CANN user's includes look (-I include): shipped in the package.
    "include/acl/acl.h": render_acl_header,
    "include/aclnn/acl_meta.h": render_meta_header,
    "include/aclnnop/aclnn_blitz_sparse_attention.h": render_op_header,
    "include/aclnnop/aclnn_blitz_select_blocks.h": render_select_header,
    "include/blitz_acl/blitz_cpu.h": render_blitz_header,
    "blitz_acl/devices/_cdef.py": render_cdef_module,
    "kernel_src/npu/op_host/blitz_sparse_attention_def.cpp": render_opdef,
    "kernel_src/npu/op_host/blitz_sparse_attention_indices.h": render_indices,
    "kernel_src/npu/op_host/blitz_select_blocks_indices.h": render_select_indices,
    # The limits, refusal messages and API defaults: C++ for both devices' checks (the values also
    # for the kernels), Python for its own.
    # The parameter list by name: the binding's builder, OpArgs and the exported entry point.
    "blitz_acl/devices/_op_args.py": render_args_module,
    "kernel_src/cpu/cann_api/op_args.h": render_op_args_header,
    "kernel_src/cpu/cann_api/op_export.cpp": render_op_export,
    "kernel_src/cpu/select/select_args.h": render_select_args_header,
    "kernel_src/cpu/select/select_export.cpp": render_select_export,
    "kernel_src/common/op_limits.h": render_limits_header,
    "kernel_src/common/op_refusals.h": render_refusals_header,
    "blitz_acl/limits.py": render_limits_module,
    # BlitzSelectBlocks' own limits and defaults (both devices), and what the NPU op takes so far.
    "kernel_src/cpu/select/select_limits.h": render_select_limits_header,
    "blitz_acl/select_limits.py": render_select_limits_module,
    "kernel_src/npu/op_host/select_npu_limits.h": render_select_npu_header,
    "kernel_src/common/select_refusals.h": render_select_refusals_header,
}


def generate() -> Dict[str, str]:
    """Output path -> the text the spec generates now."""
    return {path: render(SPEC_PATH) for path, render in OUTPUTS.items()}


def stale_outputs(root: Path = REPO_ROOT) -> Dict[str, str]:
    """Outputs whose file differs from what the spec generates: path -> reason."""
    stale = {}
    for path, text in generate().items():
        target = root / path
        if not target.exists():
            stale[path] = "missing"
        elif target.read_text() != text:
            stale[path] = "differs from the spec"
    return stale


def write(root: Path = REPO_ROOT) -> None:
    for path, text in generate().items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
