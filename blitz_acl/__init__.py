"""blitz_acl: block-sparse prefill flash attention (BlitzSparseAttention) for Ascend NPUs and
the CPU, called through a plain C ABI with cffi.

    from blitz_acl import blitz_sparse_attention, sabi
    out = blitz_sparse_attention(q, k, v, sabi.frame_pattern(1, 3, S, S, 0.5))

`select_blocks` chooses the tiles from query and key (a sabi, CPU device); `sabi` holds the block-index format and its tools, `reference` the float64 numpy reference,
`torch_bsa` the original torch_bsa extension's call (`from blitz_acl import torch_bsa`);
`include_dir()` is where the C headers are (also `python -m blitz_acl --include-dir`).
"""

from importlib import metadata as _metadata

from . import reference, sabi, torch_bsa
from .api import blitz_sparse_attention
from .block_select import Anchors, select_blocks
from .headers import include_dir

try:  # the version lives once, in pyproject.toml
    __version__ = _metadata.version("blitz-acl")
except _metadata.PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["blitz_sparse_attention", "select_blocks", "Anchors", "sabi", "reference", "torch_bsa", "include_dir", "__version__"]
