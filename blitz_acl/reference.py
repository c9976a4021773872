"""The float64 numpy reference of the whole operation (DESIGN.md, "The operation"): the
`reference` device (blitz_acl.devices.reference), with float64 outputs.

- `attention(query, key, value, sabi=None, **same keywords as blitz_sparse_attention)`:
  numpy/torch inputs in, float64 numpy out (in the output layout); with return_lse a pair
  (out, lse [B, N, Sq]);
- `run(call)`: the same from a validated AttentionCall, returning (out, lse or None).
"""

from .api import reference_attention as attention
from .devices.reference import compute as run

__all__ = ["attention", "run"]
