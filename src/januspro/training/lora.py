"""LoRA for the LLM, in own code: `W x + (alpha / r) * B A x` on chosen linear layers.

The adapted layer keeps its `weight` (and name), adding `lora_A` [r, in] and `lora_B`
[out, r] (B starts at zero, so training starts from the unchanged model). Checkpoints store
merged weights, so a LoRA fine-tune saves an ordinary official-layout model; the adapters are
kept in the trainer state for exact resumption.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from januspro.training.config import LoraConfig


class LoRALinear(nn.Linear):
    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device, dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias) + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scale

    def merged_weight(self) -> torch.Tensor:
        return self.weight + (self.lora_B @ self.lora_A) * self.scale


def apply_lora(module: nn.Module, config: LoraConfig) -> int:
    """Replace the target linear layers under `module` by LoRA layers; returns how many."""
    count = 0
    for child in list(module.modules()):
        for attr, layer in list(child.named_children()):
            if isinstance(layer, nn.Linear) and not isinstance(layer, LoRALinear) and attr in config.targets:
                setattr(child, attr, LoRALinear(layer, config.rank, config.alpha))
                count += 1
    if count == 0:
        raise ValueError(f"no linear layer named {config.targets} to adapt")
    return count


def lora_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items() if "lora_" in k}


def load_lora_state(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing = [k for k in (k for k in module.state_dict() if "lora_" in k) if k not in state]
    if missing:
        raise ValueError(f"the trainer state lacks LoRA tensors: {missing[:4]}")
    module.load_state_dict(state, strict=False)


def merged_state(module: nn.Module, state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """`state` with every LoRA layer under `module` merged into its weight and the adapter
    tensors removed (an ordinary checkpoint)."""
    out = {k: v for k, v in state.items() if "lora_" not in k}
    for name, layer in module.named_modules():
        if isinstance(layer, LoRALinear):
            out[f"{prefix}{name}.weight"] = layer.merged_weight().detach().cpu()
    return out
