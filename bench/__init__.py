"""The blitz_acl bench: `python -m bench` sweeps sparsity and prints the original kernel's table.

One module per job: `run` (the sweep table and the loop), `timing`, `inputs` (q, k, v),
`patterns` (the sabi and token mask per pattern and sparsity), `competitors` (torch SDPA,
torch_npu, FlexAttention, blitz_acl), `check` (Outputs_equal), `flops` (the one FLOP formula),
`table`, `machine`, `report` (JSON) and `plot` (PNG). `cpu_kernel` (issue 5's kernel targets)
reuses these modules.
"""
