"""The public entry point: blitz_sparse_attention."""

from __future__ import annotations

from . import arguments, devices, limits
from .torch_route import routed


# The defaults are the spec's (aclnn_gen/spec.py API_DEFAULTS, with a note where one differs
# from the op attribute's), read from the generated blitz_acl/limits.py.
@routed("blitz_sparse_attention")  # torch tensors: through torch.ops.blitz_acl (blitz_acl.torch_ops)
def blitz_sparse_attention(query, key, value, sabi=None, *, num_heads=limits.DEFAULT_NUM_HEADS,
                           num_key_value_heads=limits.DEFAULT_NUM_KEY_VALUE_HEADS,
                           input_layout=limits.DEFAULT_INPUT_LAYOUT, scale_value=limits.DEFAULT_SCALE_VALUE,
                           actual_seq_lengths=None, actual_seq_lengths_kv=None, atten_mask=None,
                           sparse_mode=limits.DEFAULT_SPARSE_MODE, pre_tokens=limits.DEFAULT_PRE_TOKENS,
                           next_tokens=limits.DEFAULT_NEXT_TOKENS, block_shape=limits.DEFAULT_BLOCK_SHAPE,
                           return_lse=limits.DEFAULT_RETURN_LSE, device=None, validate=True):
    """Block-sparse prefill attention: softmax(scale * Q K^T) V over the tiles sabi selects.

    The [Sq, Skv] attention matrix is cut into tiles of bq x bkv tokens (block_shape, default
    128 x 512; the last tile of each dim may be partial). Only tiles listed in sabi are loaded and
    computed; every other score counts as masked. Inside a computed tile, sparse_mode (and
    atten_mask) mask single tokens.

    Arguments:
        query: (B, N, Sq, D) in layout BNSD, (B, Sq, N, D) in BSND, (B, Sq, N*D) in BSH.
            numpy array (float32, float16, ml_dtypes.bfloat16) or torch tensor (float32,
            float16, bfloat16; CPU, or NPU with torch_npu). float32 runs on the CPU device and
            the reference only.
        key, value: (B, Nkv, Skv, D) in BNSD (BSND / BSH likewise); the dtype, kind and device
            of query.
        sabi: uint16 (Bs, Ns, R, W) with Bs in {1, B}, Ns in {1, N}, R = ceil(Sq / bq),
            W <= C = ceil(Skv / bkv); a 3-d (Ns, R, W) sabi means Bs = 1. Row sabi[b, h, i]
            lists the key blocks query block i attends to, in any order; 0xFFFF marks an unused
            slot. int16/int32/int64 with -1 for unused slots are accepted too; numpy, torch or a
            nested list. None (default): every block. Example, Sq = 384, Skv = 1536 (R = C = 3):

                sabi[b, h] = [[0, -1],     tiles computed:  1 0 0
                              [1,  0],                      1 1 0
                              [2, -1]]                      0 0 1

        num_heads: N. Default None: read from query's shape; required for BSH.
        num_key_value_heads: Nkv, default 0 (= N). N % Nkv == 0; query head h reads key/value
            head h // (N // Nkv) (GQA; Nkv = 1 is MQA).
        input_layout: "BNSD" (default), "BSND", "BSH", or "BNSD_BSND" (BNSD in, BSND out).
        scale_value: float, default 1 / sqrt(D).
        actual_seq_lengths, actual_seq_lengths_kv: list of ints, length 1 (all batches) or B,
            each in [0, Sq] / [0, Skv]. Default None: full lengths. Query rows at or past the
            length give zeros; keys at or past the kv length are never attended.
        atten_mask: (Sq', Skv'), (1 or B, Sq', Skv') or (1 or B, 1 or N, Sq', Skv') with
            Sq' >= Sq and Skv' >= Skv (the top-left [Sq, Skv] window is used, so keys padded to
            a multiple of 32 as the original recommends are fine); bool, int8 or uint8,
            1 = masked out. Used with sparse_mode 0 (optional) and 1 (required). Default None.
        sparse_mode: token mask inside the computed tiles, on each batch's actual lengths
            (query i, key j, o = Skv - Sq). Default 0.
              0: none, or atten_mask;   1: atten_mask (required);
              2: causal from the top-left corner,      j <= i
              3: causal from the bottom-right corner,  j <= i + o
              4: band from the bottom-right corner,    i + o - pre_tokens <= j <= i + o + next_tokens
            e.g. Sq = 3, Skv = 5 (1 = attended):
              mode 2:  1 0 0 0 0     mode 3:  1 1 1 0 0     mode 4, pre 1, next 0:  0 1 1 0 0
                       1 1 0 0 0              1 1 1 1 0                             0 0 1 1 0
                       1 1 1 0 0              1 1 1 1 1                             0 0 0 1 1
        pre_tokens, next_tokens: ints, default 2147483647; used by sparse_mode 4 only.
        block_shape: (bq, bkv), default (128, 512). Both devices take bq in {64, 128, 256, 512,
            1024} and bkv a multiple of 64 up to 1024 (blitz_acl.limits), so every pair of the
            original's {128, 256, 512, 1024}.
        return_lse: also return the softmax log-sum-exp. Default False.
        device: "cpu" (this project's CPU device library), "npu" (Ascend, via CANN),
            "npu_sim" (the NPU op's own tiling and Ascend C kernel run on the host through an
            execution model of the Ascend C API; float16 / bfloat16 host inputs; very slow, for
            testing NPU kernel changes without an NPU; README "The NPU execution model"),
            "reference" (float64 numpy, slow), or None (default): "npu" for torch_npu tensors,
            otherwise "cpu".
        validate: check every sabi entry (range, repeats) and atten_mask values before the
            call. Default True; False checks shapes and dtypes only (the kernels still never
            read out of bounds, but the result of invalid entries is unspecified).

    Returns:
        attention_out: the shape of query (BSND for BNSD_BSND), the dtype, kind and device of
            query. A query row with no attended key gives zeros.
        With return_lse=True, a pair (attention_out, softmax_lse): softmax_lse (B, N, Sq)
        float32, the natural log of the softmax denominator including the row max (the value
        FlashAttention returns, for merging partial results); -inf for rows with no attended key.

    Raises:
        TypeError / ValueError naming the argument, the value received and what was expected
            (before any work starts).
        blitz_acl.devices.status.AclError: a status from the device library, with its message
            and `.status`; a ValueError subclass for arguments the library refuses, a MemoryError
            subclass when the workspace cannot be allocated.
        ImportError: the device library is missing (the message lists every path tried).
        KeyboardInterrupt: Ctrl-C during a CPU call (the process stays usable).
    """
    # Every parameter by name, as given: normalize has this very signature (tests/test_api.py
    # checks that the two cannot drift), so the list is not spelled a third time here.
    call = arguments.normalize(**locals())
    out, lse = devices.run(call, call.device)  # every device, reference included
    return (out, lse) if return_lse else out


def reference_attention(query, key, value, sabi=None, **kwargs):
    """blitz_acl.reference.attention: the reference device's float64 outputs on plain inputs
    (same arguments as blitz_sparse_attention; device defaults to "reference")."""
    from .devices import reference

    kwargs.setdefault("device", "reference")
    call = arguments.normalize(query, key, value, sabi, **kwargs)
    out, lse = reference.compute(call)
    return (out, lse) if call.return_lse else out
