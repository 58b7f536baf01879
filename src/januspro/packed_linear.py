"""Linear layers with their weights packed for oneDNN: faster CPU decoding, same math.

A decode step multiplies a handful of rows (2N for N guided images, B for B chats) by every
weight matrix, so on a CPU it is bound by reading weights from memory. PyTorch's default fp32
path (MKL's sgemm, as called by `F.linear`) reaches about a third of the memory bandwidth for
so few rows; oneDNN's matmul on a weight reordered once into its own layout reaches nearly all
of it. Measured on a 2-core AVX2 EPYC (DRAM reads ~29 GB/s), one [16384, 2048] fp32 weight:

    rows        1      2      8     32     600
    F.linear  7.7   13.0   23.3   31.6   268 ms
    packed    4.7    4.4    7.8   17.4   284 ms

so a Janus decode step runs about twice as fast. For prefills oneDNN is up to ~8% slower than
MKL, but unpacking a weight costs about as much as a 500-row product (reordering back to a
dense [5632, 2048] weight takes ~19 ms), so only very long prefills (from `UNPACK_ROWS` rows,
e.g. eight image prompts at once) use a temporary dense copy and MKL.

`pack_linear_layers` swaps `nn.Linear` modules for `PackedLinear` in place. The packed weight
replaces the dense one (no second copy in memory) and is not a parameter: a packed model is for
inference only (no autograd, no `load_state_dict`, no later `.to()`; `state_dict()` and
`copy.deepcopy` work), which is why only `engine.prepare_for_inference` calls it, once the model
has its device and dtype, and why training first calls `unpack_linear_layers`.
Results equal `F.linear` up to float summation order (about 1e-6 relative).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Measured crossover, [5632, 2048] weight: 611 rows packed 57 ms, unpack + F.linear 70 (F.linear
# on a dense weight 52); 2048 rows 186 / 196; 4888 rows 452 / 431.
UNPACK_ROWS = 4096


class PackedLinear(nn.Module):
    """y = x W^T + b with W held in oneDNN's layout (an opaque `torch._mkldnn` tensor)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # A plain attribute, not a buffer: Module.to()/state_dict() cannot handle the layout.
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., in_features] -> [..., out_features]"""
        if x.numel() >= UNPACK_ROWS * self.in_features:
            return F.linear(x, self.packed_weight.to_dense(), self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")

    def weight_bytes(self) -> int:
        return self.in_features * self.out_features * self.packed_weight.element_size()

    def unpacked(self) -> nn.Linear:
        """An ordinary (trainable) nn.Linear with the same weights."""
        weight = self.packed_weight.to_dense()
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, device="meta")
        linear.weight = nn.Parameter(weight)
        if self.bias is not None:
            linear.bias = nn.Parameter(self.bias.detach().clone())
        return linear

    def __deepcopy__(self, memo: dict) -> PackedLinear:
        return PackedLinear(self.unpacked())

    def _save_to_state_dict(self, destination, prefix, keep_vars):  # type: ignore[no-untyped-def]
        # Unpacked on the way out, so a packed model still saves the official layout.
        destination[prefix + "weight"] = self.packed_weight.to_dense()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def packing_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether this build and CPU can pack `dtype` weights (fp32 on any x86 oneDNN build; bf16
    only where the CPU has native bf16 support) and the packed product is right."""
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:
        generator = torch.Generator().manual_seed(0)  # (the global RNG stays untouched: loading draws nothing)
        linear = nn.Linear(16, 8, device="meta").to_empty(device="cpu")
        with torch.no_grad():
            linear.weight.copy_(torch.randn(8, 16, generator=generator))
            linear.bias.copy_(torch.randn(8, generator=generator))
        linear = linear.to(dtype)
        x = torch.randn(3, 16, generator=generator).to(dtype)
        with torch.no_grad():
            expected = linear(x)
            got = PackedLinear(linear)(x)
        return bool(torch.allclose(got.float(), expected.float(), rtol=1e-2, atol=1e-2))
    except (RuntimeError, NotImplementedError, AttributeError):
        return False


@torch.no_grad()
def pack_linear_layers(module: nn.Module) -> int:
    """Replace every `nn.Linear` under `module` (in place) by a `PackedLinear`; returns how
    many were replaced. Linear layers whose weight is shared with another module (tied
    embeddings) are left alone: packing them would keep two copies."""
    counts: dict[int, int] = {}
    for _, tensor in module.named_parameters(remove_duplicate=False):
        counts[id(tensor)] = counts.get(id(tensor), 0) + 1
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and counts.get(id(child.weight), 0) == 1:
                setattr(parent, name, PackedLinear(child))
                replaced += 1
    return replaced


@torch.no_grad()
def unpack_linear_layers(module: nn.Module) -> int:
    """Undo `pack_linear_layers` (in place): every `PackedLinear` becomes a trainable
    `nn.Linear` again; returns how many."""
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, PackedLinear):
                setattr(parent, name, child.unpacked())
                replaced += 1
    return replaced


def parameter_count(module: nn.Module) -> int:
    """Number of weights in `module`, packed ones included (`parameters()` misses those)."""
    packed = sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, PackedLinear))
    return packed + sum(p.numel() for p in module.parameters())


def weight_bytes(module: nn.Module) -> int:
    """Bytes of the weights in `module`, packed ones included."""
    packed = sum(m.weight_bytes() for m in module.modules() if isinstance(m, PackedLinear))
    return packed + sum(p.numel() * p.element_size() for p in module.parameters())
