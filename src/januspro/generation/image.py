"""Text-to-image generation: classifier-free-guided sampling of VQ codes, then VQ decoding.

For a prompt and N images the conditional rows (the prompt) and the unconditional rows (the
prompt with every token but the first and last replaced by padding, as the original builds
them) are identical across images, so the prompt is prefilled once for two rows and the cache
is then broadcast to 2N rows. Each decode step embeds the N codes just sampled, runs the LLM on
all 2N rows in one batch, mixes conditional and unconditional logits and samples the next N
codes, entirely on the device: the loop never waits for the GPU.

Large N runs in chunks sized to a memory budget. Noise is counter-based (see `sampling`), so a
chunked run draws exactly the numbers an unchunked one would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from januspro.generation.kv_cache import StaticKVCache
from januspro.generation.sampling import CounterNoise, SamplingParams, guided_logits, sample
from januspro.models.janus import JanusModel

ProgressFn = Callable[[int, int], None]  # (steps done, steps total)


@dataclass(frozen=True)
class ImagePlan:
    """How a request is split: images per chunk and the memory each chunk needs."""

    chunk_size: int
    bytes_per_image: int
    budget_bytes: int | None


def unconditional_ids(prompt_ids: list[int], pad_id: int) -> list[int]:
    """The original's unconditional prompt: first and last tokens kept, the rest padding."""
    if len(prompt_ids) <= 2:
        return list(prompt_ids)
    return [prompt_ids[0]] + [pad_id] * (len(prompt_ids) - 2) + [prompt_ids[-1]]


def default_budget(device: torch.device) -> int | None:
    """Bytes the generation may use beyond the weights: free GPU memory, or half the free RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.9)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 0.5)
    except (ValueError, OSError, AttributeError):
        return None


def plan_chunks(model: JanusModel, n: int, prompt_len: int, budget_bytes: int | None) -> ImagePlan:
    """Largest chunk of images whose KV cache, logits and VQ-decoding activations fit."""
    config = model.config
    weight = model.gen_head.vision_head.weight
    capacity = prompt_len + config.num_gen_tokens
    kv = StaticKVCache.bytes_needed(config.language, 2, capacity, weight.dtype)
    vocab = config.gen_vision.codebook_size
    logits = 2 * vocab * 4 * 6  # fp32 logits, guidance, softmax, noise and hash temporaries
    hidden = 2 * config.language.intermediate_size * weight.element_size() * 4
    per_image = kv + logits + hidden
    if budget_bytes is None:
        return ImagePlan(n, per_image, None)
    chunk = max(1, min(n, budget_bytes // max(per_image, 1)))
    return ImagePlan(int(chunk), per_image, budget_bytes)


@torch.inference_mode()
def generate_image_codes(
    model: JanusModel,
    prompt_ids: list[int],
    pad_id: int,
    *,
    n: int,
    cfg_weight: float,
    params: SamplingParams,
    seed: int,
    chunk_size: int | None = None,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Sample `n` images' VQ codes for one prompt: [n, num_gen_tokens] int64 on the model's device."""
    device = model.gen_head.vision_head.weight.device
    num_tokens = model.config.num_gen_tokens
    length = len(prompt_ids)
    chunk_size = max(1, min(chunk_size or n, n))

    # Prefill once: row 0 conditional, row 1 unconditional. [2, T]
    ids = torch.tensor([prompt_ids, unconditional_ids(prompt_ids, pad_id)], device=device)
    prefix = StaticKVCache(model.config.language, 2, length, device, model.gen_head.vision_head.weight.dtype)
    positions = torch.arange(length, device=device).expand(2, length)
    hidden = model.hidden_states(model.embed_tokens(ids), positions, None, prefix.layers(), torch.arange(length, device=device))
    first_logits = model.image_logits(hidden[:, -1])  # [2, V]
    first = guided_logits(first_logits[0:1], first_logits[1:2], cfg_weight)  # [1, V]

    total_steps = num_tokens * ((n + chunk_size - 1) // chunk_size)
    done_steps = 0
    chunks = []
    for start in range(0, n, chunk_size):
        count = min(chunk_size, n - start)
        rows = torch.tensor([0] * count + [1] * count, device=device)
        cache = prefix.broadcast_rows(rows, length + num_tokens)
        noise = CounterNoise([seed] * count, range(start, start + count), first.shape[-1], device)
        step = torch.zeros((), dtype=torch.long, device=device)
        codes = torch.empty(count, num_tokens, dtype=torch.long, device=device)
        token = sample(first.expand(count, -1), params, noise, step)
        codes[:, 0] = token
        for index in range(1, num_tokens):
            slot = length + index - 1
            embeds = model.embed_image_codes(token)  # [count, D]
            embeds = torch.cat([embeds, embeds])[:, None]  # [2*count, 1, D]: cond rows, then uncond
            pos = torch.full((2 * count, 1), slot, dtype=torch.long, device=device)
            slots = torch.full((1,), slot, dtype=torch.long, device=device)
            hidden = model.hidden_states(embeds, pos, None, cache.layers(slot + 1), slots)
            logits = model.image_logits(hidden[:, -1])  # [2*count, V]
            step += 1
            token = sample(guided_logits(logits[:count], logits[count:], cfg_weight), params, noise, step)
            codes[:, index] = token
            if progress is not None:
                progress(done_steps + index + 1, total_steps)
        done_steps += num_tokens
        chunks.append(codes)
        del cache
    return torch.cat(chunks)


@torch.inference_mode()
def decode_images(model: JanusModel, codes: torch.Tensor, batch_size: int = 4) -> torch.Tensor:
    """[n, num_gen_tokens] codes -> [n, 3, H, W] float32 pixels in roughly [-1, 1], decoded in
    the VQ decoder's dtype `batch_size` images at a time."""
    out = [model.decode_image_codes(codes[i : i + batch_size]).float() for i in range(0, codes.shape[0], batch_size)]
    return torch.cat(out)
