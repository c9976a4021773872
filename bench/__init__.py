"""The blitz_acl bench: `python -m bench` sweeps sparsity and prints the original kernel's table.

One module per job: `run` (the sweep table and the loop), `timing`, `inputs` (q, k, v),
`patterns` (the sabi and token mask per pattern and sparsity), `competitors` (torch SDPA,
torch_npu, FlexAttention, blitz_acl), `check` (Outputs_equal), `flops` (the one FLOP formula),
`table`, `machine`, `report` (JSON) and `plot` (PNG). `cpu_kernel` (issue 5's kernel targets)
reuses these modules.
"""

import os

# torch's OpenMP workers (libgomp) spin after every parallel region before they sleep, unless
# OMP_WAIT_POLICY says otherwise; libgomp reads it once, when torch loads it, so it is set here,
# before any bench module imports torch. Timed calls are interleaved, so the workers of an SDPA
# or FlexAttention call kept spinning into our next call and took CPU from its threads: on a
# 2-core Zen 3 KVM guest, ours at H=3, S=8192 dense took 839 ms with the default and 687 ms with
# PASSIVE in the same sweep (SDPA 759 vs 768 ms, FlexAttention 3.48 vs 2.64 s). A value the user
# set is kept; the bench prints and records which policy ran.
OMP_WAIT_POLICY_SET_BY_BENCH = "OMP_WAIT_POLICY" not in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def omp_wait_policy() -> str:
    """The OpenMP wait policy this bench run uses, and who chose it."""
    who = "set by the bench, so idle torch workers sleep" if OMP_WAIT_POLICY_SET_BY_BENCH else "from the environment"
    return f"{os.environ['OMP_WAIT_POLICY']} ({who})"

