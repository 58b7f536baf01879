"""An exponential moving average of the weights a stage trains (`StageConfig.ema_decay`).

After every optimizer step each averaged tensor moves towards its parameter:

    average <- decay_t * average + (1 - decay_t) * parameter,   decay_t = min(decay, (1 + t) / (10 + t))

where t counts the stage's steps, so the first steps (whose weights are far from the final ones)
are forgotten quickly. At the end of the stage the averages replace the parameters: the stage's
checkpoint and the next stage start from them. Checkpoints inside a stage hold the raw weights and,
in the trainer state, the averages, so a resumed run continues both exactly.

Works on plain, DDP-replicated and FSDP-sharded parameters alike: the averages have the
parameters' layout (a sharded parameter's average is sharded the same way).
"""

from __future__ import annotations

import torch
from torch import nn

from januspro.errors import CheckpointError


class WeightAverage:
    def __init__(self, params: dict[str, nn.Parameter], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.params = params
        self.averages = {name: p.detach().clone() for name, p in params.items()}

    def decay_at(self, step: int) -> float:
        """The decay used after optimizer step `step` (1-based within the stage)."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold the parameters after optimizer step `step` (1-based) into the averages."""
        if not self.averages:
            return
        weight = 1.0 - self.decay_at(step)
        torch._foreach_lerp_(list(self.averages.values()), [p.detach() for p in self.params.values()], weight)

    @torch.no_grad()
    def copy_to_params(self) -> None:
        """Replace the parameters by their averages (the end of the stage)."""
        for name, param in self.params.items():
            param.copy_(self.averages[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Complete averages on the CPU (gathered where the parameters are sharded)."""
        return {name: _full(t).cpu() for name, t in self.averages.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = set(self.averages) - set(state), set(state) - set(self.averages)
        if missing or unexpected:
            raise CheckpointError(f"the checkpoint's weight averages do not match the parameters this stage trains "
                                  f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
        for name, average in self.averages.items():
            average.copy_(_like(state[name], average))


def _full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor  # a DTensor under FSDP


def _like(full: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`full` in `target`'s layout: sharded like it under FSDP, on its device."""
    if hasattr(target, "device_mesh"):
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(full.to(target.device, target.dtype), target.device_mesh, target.placements)
    return full.to(target.device, target.dtype)
