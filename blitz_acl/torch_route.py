"""The hook that sends a public call on torch tensors through blitz_acl's torch.library op.

`@routed("blitz_sparse_attention")` on a public function: when its first argument (query) is a
torch tensor, the call goes to `torch.ops.blitz_acl.<name>` (blitz_acl.torch_ops), so
torch.compile and torch.export see one operator instead of tracing into cffi; anything else (numpy
arrays) runs the function itself. The op's implementation calls the undecorated function
(`__wrapped__`), so both paths run the same checks and the same device code.

This module never imports torch: a torch tensor in the call means torch is already imported.
"""

from __future__ import annotations

import functools
import inspect

from . import arrays


def routed(op_name: str):
    def wrap(eager):
        first = next(iter(inspect.signature(eager).parameters))  # query, named for keyword calls

        @functools.wraps(eager)
        def public(*args, **kwargs):
            lead = args[0] if args else kwargs.get(first)
            if arrays.is_torch(lead):
                from . import torch_ops

                return torch_ops.route(op_name, eager, args, kwargs)
            return eager(*args, **kwargs)

        return public

    return wrap
