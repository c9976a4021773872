"""The blitz_acl bench: `python -m bench` sweeps sparsity and prints the original kernel's table.

One module per job: `run` (the sweep table and the loop), `timing`, `inputs` (tensors and sabi),
`competitors` (torch SDPA, torch_npu, FlexAttention, blitz_acl), `check` (Outputs_equal),
`flops` (the one FLOP formula), `table`, `machine`, `report` (JSON) and `plot` (PNG).
"""
