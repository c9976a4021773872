"""sabi (sparse attention block indices): which key/value tiles each query block computes.

The attention matrix [Sq, Skv] is cut into tiles of bq x bkv tokens (128 x 512 by default,
`block_shape`); R = ceil(Sq / bq) query blocks, C = ceil(Skv / bkv) key blocks, the last of
each possibly partial. sabi is an integer array [Bs, Ns, R, W] with W <= C, Bs in {1, B},
Ns in {1, N} (a size-1 dim broadcasts; a 3-d [Ns, R, W] sabi means Bs = 1). Row
`sabi[b, h, i, :]` lists the key blocks query block i attends to, in any order; PAD (0xFFFF,
-1 as a signed integer) anywhere in a row means "no block here". An index >= C or an index
twice in one row is invalid. Example, Sq = 384, Skv = 1536 (R = 3, C = 3), one head:

    sabi[0, 0] = [[0, -1],      tiles computed:   1 0 0
                  [1,  0],                        1 1 0
                  [2, -1]]                        0 0 1

Public functions:

- geometry: `block_counts`, `sabi_shape`, `check_block_shape`;
- checks: `normalize` (any accepted dtype/kind -> contiguous numpy uint16 [Bs, Ns, R, W]),
  `validate` (shape, broadcast dims, every entry; errors name the first bad (b, h, row, col));
- conversions: `expand` (materialise broadcast dims), `compact` (rows sorted, PAD at the
  right, as the original NPU kernel wants), `to_block_mask` / `from_block_mask` (boolean
  [B, N, R, C]), `to_token_mask` (boolean [B, N, Sq, Skv], for tests, size-guarded),
  `to_flex_block_mask` / `from_flex_block_mask` (torch FlexAttention's BlockMask);
- statistics: `row_counts`, `selected_tiles`, `density`, `token_density`, `stats` (SabiStats);
- seeded pattern builders, each returning uint16 [B, N, R, W] (or [B, 1, R, W] with
  `shared_heads=True`, one pattern for all heads): `dense_pattern`, `random_pattern`,
  `frame_pattern` (the original benchmark's pattern), `band_pattern`, `causal_pattern`.

The package: `format` (constants, geometry, normalize / validate / expand / compact: the format
contract), `masks` (block and token masks), `flex` (FlexAttention), `stats`, `patterns`; every
public name is re-exported here.
"""

from .flex import from_flex_block_mask, to_flex_block_mask
from .format import (DEFAULT_BLOCK_SHAPE, MAX_INDEX, PAD, block_counts, check_block_shape, compact, expand,
                     normalize, sabi_shape, validate)
from .masks import TOKEN_MASK_MAX_ELEMENTS, from_block_mask, to_block_mask, to_token_mask
from .patterns import (FRAME_DENSE_ROWS, FRAME_KEPT_PREFIX, band_pattern, causal_pattern, dense_pattern,
                       frame_pattern, random_pattern)
from .stats import SabiStats, density, row_counts, selected_tiles, stats, token_density

__all__ = [
    "PAD", "MAX_INDEX", "DEFAULT_BLOCK_SHAPE", "TOKEN_MASK_MAX_ELEMENTS", "FRAME_DENSE_ROWS", "FRAME_KEPT_PREFIX",
    "check_block_shape", "block_counts", "sabi_shape", "normalize", "validate", "expand", "compact",
    "to_block_mask", "from_block_mask", "to_token_mask", "to_flex_block_mask", "from_flex_block_mask",
    "row_counts", "selected_tiles", "density", "token_density", "stats", "SabiStats",
    "dense_pattern", "random_pattern", "frame_pattern", "band_pattern", "causal_pattern",
]
