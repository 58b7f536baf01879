"""Int8 weight-only quantisation of the LLM's linear layers.

Each weight matrix is stored as int8 with one float scale per output channel (symmetric,
round-to-nearest); activations stay in the model's dtype. Decoding is bound by reading weights,
so halving their bytes (bf16 -> int8) nearly halves the time of a step on memory-bound hardware,
and halves the LLM's share of memory (Janus-Pro-7B: 13 GB -> 6.5 GB).

The matmul uses PyTorch's fused int8-weight kernel (`_weight_int8pack_mm`) where the device has
one, else dequantises on the fly (which torch.compile fuses into the matmul on GPUs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Linear layers of the decoder that are quantised (the embeddings, norms and heads are not).
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CPU_MAX_FUSED_ROWS = 2  # measured on 2-core AVX2: fused 8 ms vs dequantised 25 ms at 1 row, 77 vs 27 ms at 8


class Int8Linear(nn.Module):
    """y = x W^T * scale + b with W int8 [out, in] and scale [out]."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0  # [out]
        self.register_buffer("weight", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(linear.weight.dtype))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self._fused = _fused_kernel_available(self.weight.device, linear.weight.dtype)
        # PyTorch's CPU kernel is fast only for a row or two (decoding one sequence); for more rows
        # (prefill, CFG batches) dequantising and using the float matmul is 2.5-40x faster.
        self._max_fused_rows = CPU_MAX_FUSED_ROWS if self.weight.device.type == "cpu" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // max(x.shape[-1], 1)
        fits = self._max_fused_rows is None or rows <= self._max_fused_rows
        if self._fused and fits and x.dtype == self.scale.dtype:
            shape = x.shape
            out = torch._weight_int8pack_mm(x.reshape(-1, shape[-1]), self.weight, self.scale)
            out = out.reshape(*shape[:-1], self.out_features)
        else:
            out = F.linear(x, self.weight.to(x.dtype)) * self.scale.to(x.dtype)
        return out if self.bias is None else out + self.bias

    def dequantized(self) -> torch.Tensor:
        return self.weight.float() * self.scale.float()[:, None]


def _fused_kernel_available(device: torch.device, dtype: torch.dtype) -> bool:
    if not hasattr(torch, "_weight_int8pack_mm"):
        return False
    try:
        x = torch.zeros(2, 32, device=device, dtype=dtype)
        w = torch.zeros(16, 32, device=device, dtype=torch.int8)
        s = torch.ones(16, device=device, dtype=dtype)
        torch._weight_int8pack_mm(x, w, s)
        return True
    except (RuntimeError, NotImplementedError):
        return False


@torch.no_grad()
def quantize_int8(module: nn.Module, targets: tuple[str, ...] = TARGETS) -> int:
    """Replace the target linear layers under `module` (in place) by Int8Linear; returns how
    many were replaced."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and name in targets:
                setattr(parent, name, Int8Linear(child))
                count += 1
    return count
