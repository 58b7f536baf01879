"""Sampling as pure functions on device tensors, with no host synchronisation.

Randomness is counter-based: the noise for (seed, row, step, token) is a hash of those four
numbers. A row's draws therefore do not depend on which other rows share its batch, how a large
request is split into chunks, or the order of operations, so the same seed gives the same
images whether 16 are generated at once or in chunks of 4; and because no generator state is
involved, a decode step that samples can be captured in a CUDA graph or compiled as is.

Sampling itself is the Gumbel-max trick in its exponential form: argmax(p / E) with E ~ Exp(1)
draws from Categorical(p).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from januspro.errors import InputError

_MASK32 = 0xFFFFFFFF


@dataclass(frozen=True)
class SamplingParams:
    """temperature 0 (or top_k 1) is greedy decoding."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if not (self.temperature >= 0 and self.temperature < float("inf")):
            raise InputError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise InputError(f"top_k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1


def _mul32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """(x * constant) mod 2^32 for x in [0, 2^32), without overflowing int64."""
    low, high = constant & 0xFFFF, constant >> 16
    return (x * low + (((x * high) & 0xFFFF) << 16)) & _MASK32


def hash32(x: torch.Tensor) -> torch.Tensor:
    """A well-mixing 32-bit integer hash (xor-shift-multiply), on int64 tensors."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


class CounterNoise:
    """Uniform noise in (0, 1) that is a pure function of (seed, row, step, column).

    The seed- and row-dependent keys and the column hashes are computed once per request;
    each step then costs a few elementwise integer ops on a [R, V] tensor and reads the step
    from a device tensor, so no host value crosses to the device inside a decode loop."""

    def __init__(self, seeds: Sequence[int], rows: Sequence[int], width: int, device: torch.device) -> None:
        """seeds, rows: per batch row, the request's seed and the row's index within its
        request (e.g. which of the N images), so that batching requests changes nothing."""
        seed_t = torch.tensor([s & _MASK32 for s in seeds], dtype=torch.int64, device=device)
        row_t = torch.tensor(list(rows), dtype=torch.int64, device=device)
        self.row_keys = hash32(hash32(seed_t) ^ hash32(row_t * 2 + 1))  # [R]
        self.cols = hash32(torch.arange(width, dtype=torch.int64, device=device) + 0x632BE5AB)  # [W]

    def uniform(self, step: torch.Tensor) -> torch.Tensor:
        """[R, W] float32 noise for decode step `step` (a 0-dim int64 tensor on the device)."""
        key = hash32(self.row_keys ^ hash32(step + 0x9E3779B9))  # [R]
        bits = hash32(key[:, None] ^ self.cols[None, :])
        # 24 random bits -> exactly representable float32 strictly inside (0, 1).
        return ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set logits outside the top-k / nucleus (top-p) set to -inf. [R, V] -> [R, V]."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the mass strictly before it already reaches top_p (keeps >= 1).
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample(logits: torch.Tensor, params: SamplingParams, noise: CounterNoise, step: torch.Tensor,
           temperature: torch.Tensor | None = None) -> torch.Tensor:
    """Draw one token per row. logits: [R, V] -> [R] int64; step: 0-dim int64 device tensor.
    temperature: params.temperature as a 0-dim float32 device tensor (the same numbers), so that
    a compiled step is not specialised to its value."""
    if params.greedy:
        return logits.argmax(dim=-1)
    scale = params.temperature if temperature is None else temperature
    logits = filter_logits(logits.float() / scale, params.top_k, params.top_p)
    probs = torch.softmax(logits, dim=-1)
    exponential = -torch.log(noise.uniform(step))
    return (probs / exponential).argmax(dim=-1)


def guided_logits(cond: torch.Tensor, uncond: torch.Tensor, weight: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance: uncond + w * (cond - uncond), in float32."""
    cond, uncond = cond.float(), uncond.float()
    return uncond + weight * (cond - uncond)
