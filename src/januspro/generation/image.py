"""Text-to-image generation: classifier-free-guided sampling of VQ codes, then VQ decoding.

For a prompt and N images the conditional rows (the prompt) and the unconditional rows (the
prompt with every token but the first and last replaced by padding, as the original builds
them) are identical across images, so the prompt is prefilled once for two rows and the cache
is then broadcast to 2N rows. Each decode step embeds the N codes just sampled, runs the LLM on
all 2N rows in one batch, mixes conditional and unconditional logits and samples the next N
codes, entirely on the device: the loop never waits for the GPU.

Three ways to run the steps, all drawing the same codes for the same seed:
- `eager`: each step attends over exactly the filled part of the cache (least work; CPU default);
- `static`: every step has fixed shapes (the cache up to a bucketed length, masked; step counters
  live on the device), which is what compilation and graph capture need;
- `cuda_graph`: the static step captured in a CUDA graph per attention length (or once, over the
  whole cache, when compiled first) and replayed for every token: no Python or launch overhead
  per step (CUDA default).

Large N runs in chunks sized to a memory budget. Noise is counter-based (see `sampling`), so a
chunked run draws exactly the numbers an unchunked one would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

import torch

from januspro.generation.kv_cache import StaticKVCache
from januspro.generation.sampling import CounterNoise, SamplingParams, guided_logits, sample
from januspro.models.janus import JanusModel
from januspro.packed_linear import weight_bytes

ProgressFn = Callable[[int, int], None]  # (steps done, steps total)
MODES = ("auto", "eager", "static", "cuda_graph")
# The static and graph steps attend over the filled cache slots rounded up to a multiple of
# this (one captured graph per length), instead of the whole cache: fewer bytes per step.
ATTENTION_BUCKET = 128
# ... when the KV cache is at least this share of the LLM's weight bytes (else one graph
# over the whole cache: capturing more would cost more than the reads it saves).
BUCKET_MIN_KV_SHARE = 0.25
# A compiled step is specialised to its cache length: compiled requests round the cache up to a
# multiple of this, so that prompts of similar length share one compiled step.
COMPILED_CAPACITY_STEP = 64
# Chunks pad their matmuls to the whole request's rows (exact chunking) up to this many rows
# (32 images); beyond, the padded matmuls would no longer be memory-bound, i.e. free.
MAX_PADDED_ROWS = 64


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


# Held back from a CUDA budget besides the KV caches and step buffers `plan_chunks` counts: cuBLAS
# workspaces, CUDA-graph memory pools, allocator rounding. On an H200, Janus-Pro-7B with 14 images
# per chunk took 0.24 GiB beyond the plan.
CUDA_RESERVE_BYTES = 512 * 2**20


def budget_left(model: JanusModel, total_bytes: int) -> int:
    """What a total memory budget leaves for generation. On CUDA: minus everything already
    allocated on the device (the weights, fused or packed copies, other models) and
    `CUDA_RESERVE_BYTES`; elsewhere minus the model's weights."""
    device = model.gen_embed.weight.device
    if device.type == "cuda":
        return total_bytes - torch.cuda.memory_allocated(device) - CUDA_RESERVE_BYTES
    return total_bytes - weight_bytes(model)


def cache_capacity(prompt_len: int, num_tokens: int, compile_step: bool = False) -> int:
    """Cache slots of a request: its prompt and codes, rounded up for a compiled step."""
    capacity = prompt_len + num_tokens
    if compile_step:
        capacity = -(-capacity // COMPILED_CAPACITY_STEP) * COMPILED_CAPACITY_STEP
    return capacity


def plan_chunks(model: JanusModel, n: int, prompt_len: int, budget_bytes: int | None,
                compile_step: bool = False) -> ImagePlan:
    """Largest chunk of images whose KV cache, logits and step activations fit the budget."""
    config = model.config
    weight = model.gen_embed.weight  # device and dtype of the model
    capacity = cache_capacity(prompt_len, config.num_gen_tokens, compile_step)
    kv = StaticKVCache.bytes_needed(config.language, 2, capacity, weight.dtype)
    vocab = config.gen_vision.codebook_size
    logits = 2 * vocab * 4 * 6  # fp32 logits, guidance, softmax, noise and hash temporaries
    hidden = 2 * config.language.intermediate_size * weight.element_size() * 4
    per_image = kv + logits + hidden
    if budget_bytes is None:
        return ImagePlan(n, per_image, None)
    chunk = max(1, min(n, budget_bytes // max(per_image, 1)))
    return ImagePlan(int(chunk), per_image, budget_bytes)


def resolve_mode(mode: str, device: torch.device) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown decode mode {mode!r} (choose from {', '.join(MODES)})")
    if mode == "auto":
        return "cuda_graph" if device.type == "cuda" else "eager"
    if mode == "cuda_graph" and device.type != "cuda":
        raise ValueError("mode 'cuda_graph' needs a CUDA device")
    return mode


def compiles_step(mode: str, device: torch.device, compile_step: bool) -> bool:
    """Whether a request's decode step is compiled: only the static step is (not the eager one)."""
    return compile_step and resolve_mode(mode, device) != "eager"


class _ChunkDecoder:
    """The decode steps of one chunk of `count` images over a prefilled, broadcast cache.

    State lives in preallocated device tensors (`token`, `slot`, `step`, `codes`), so that
    `static_step` has fixed shapes and no host values: it can be compiled and captured."""

    def __init__(self, model: JanusModel, cache: StaticKVCache, prompt_len: int, count: int, cfg_weight: float,
                 params: SamplingParams, noise: CounterNoise, first_token: torch.Tensor, num_tokens: int,
                 batch_images: int | None = None) -> None:
        """batch_images (>= count): the matmuls of each step run on 2 * batch_images rows, the
        extra ones padding (see `generate_image_codes`, pad_chunks)."""
        device = first_token.device
        self.model, self.cache, self.count = model, cache, count
        self.batch_images = max(count, batch_images or count)
        self.rows = 2 * self.batch_images
        # The temperature is read from its tensor below; params then keep a fixed placeholder.
        self.params = params if params.greedy else replace(params, temperature=1.0)
        self.noise = noise
        # Device tensors rather than Python numbers: a compiled step is then not specialised to
        # (and recompiled for) each guidance weight and temperature; the arithmetic is the same.
        self.cfg_weight = torch.tensor(cfg_weight, dtype=torch.float32, device=device)
        self.temperature = torch.tensor(params.temperature, dtype=torch.float32, device=device)
        self.prompt_len = prompt_len
        self.codes = torch.empty(count, num_tokens, dtype=torch.long, device=device)
        self.codes[:, 0] = first_token
        self.token = first_token.clone()  # [count] the codes fed at the next step
        self.slot = torch.full((), prompt_len, dtype=torch.long, device=device)  # cache slot they go to
        self.step = torch.ones((), dtype=torch.long, device=device)  # index of the code being drawn
        self.positions_all = torch.arange(cache.capacity, device=device)

    def _embeds(self) -> torch.Tensor:
        """[rows, 1, D] inputs of a step: the codes just drawn, as the conditional rows and
        again as the unconditional rows, then the padding rows (zeros)."""
        token = self.token
        pad = self.batch_images - self.count
        if pad:
            token = torch.cat([token, token.new_zeros(pad)])
        embeds = self.model.embed_image_codes(token)  # [batch_images, D]
        real = embeds[: self.count]
        parts = [real, real] + ([embeds.new_zeros(2 * pad, embeds.shape[-1])] if pad else [])
        return torch.cat(parts)[:, None]

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.model.image_logits(hidden[:, -1])  # [rows, V]
        return guided_logits(logits[: self.count], logits[self.count : 2 * self.count], self.cfg_weight)

    def eager_step(self, index: int) -> None:
        """Draw code `index` attending over exactly the filled slots (host-side slot index)."""
        slot = self.prompt_len + index - 1
        embeds = self._embeds()
        positions = torch.full((self.rows, 1), slot, dtype=torch.long, device=embeds.device)
        slots = positions[0]
        hidden = self.model.hidden_states(embeds, positions, None, self.cache.layers(slot + 1), slots)
        self.token = sample(self._logits(hidden), self.params, self.noise, self.step, self.temperature)
        self.codes[:, index] = self.token
        self.step += 1

    def static_step(self, length: int | None = None) -> None:
        """Draw the next code with fixed shapes: attention over the first `length` cache slots
        (all if None), masked beyond `slot`, which must be below `length`."""
        length = self.cache.capacity if length is None else length
        embeds = self._embeds()
        positions = self.slot.expand(self.rows, 1)
        mask = (self.positions_all[:length] <= self.slot)[None, None, None, :]  # [1, 1, 1, length]
        hidden = self.model.hidden_states(embeds, positions, mask, self.cache.layers(length), self.slot.view(1))
        token = sample(self._logits(hidden), self.params, self.noise, self.step, self.temperature)
        self.codes.index_copy_(1, self.step.view(1), token[:, None])
        self.token.copy_(token)
        self.slot += 1
        self.step += 1


def attention_lengths(prompt_len: int, num_tokens: int, capacity: int, bucketed: bool) -> list[int]:
    """Per decode step (codes 1 .. num_tokens-1), the cache length its attention reads: the
    slots filled so far rounded up to ATTENTION_BUCKET, or the whole cache."""
    lengths = []
    for index in range(1, num_tokens):
        filled = prompt_len + index  # this step writes slot prompt_len + index - 1
        lengths.append(min(capacity, -(-filled // ATTENTION_BUCKET) * ATTENTION_BUCKET) if bucketed else capacity)
    return lengths


def _bucketing_pays(decoder: _ChunkDecoder) -> bool:
    kv_bytes = 2 * decoder.cache.keys.numel() * decoder.cache.keys.element_size()
    return kv_bytes >= BUCKET_MIN_KV_SHARE * weight_bytes(decoder.model.language_model)


def _run_chunk(decoder: _ChunkDecoder, mode: str, compile_step: bool, progress: Callable[[int], None] | None) -> None:
    steps = decoder.codes.shape[1]
    if mode == "eager":
        for index in range(1, steps):
            decoder.eager_step(index)
            if progress:
                progress(index + 1)
        return
    step_fn = decoder.static_step
    if compile_step:  # one length only: each would be compiled anew
        step_fn = torch.compile(step_fn, fullgraph=True, dynamic=False)
    lengths = attention_lengths(decoder.prompt_len, steps, decoder.cache.capacity,
                                bucketed=not compile_step and _bucketing_pays(decoder))
    if mode == "static":
        for index, length in enumerate(lengths, start=1):
            step_fn(length)
            if progress:
                progress(index + 1)
        return
    # cuda_graph: per attention length, warm up on a side stream (library set-up, allocations),
    # capture one step and rewind the counters; then replay the right graph once per code. The
    # graphs share one memory pool: they never run at the same time.
    state = (decoder.token.clone(), decoder.slot.clone(), decoder.step.clone())
    stream = torch.cuda.Stream()
    pool = torch.cuda.graph_pool_handle()
    graphs: dict[int, torch.cuda.CUDAGraph] = {}
    for length in sorted(set(lengths)):
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            # two warm-up steps before the first capture, one before the others, while the
            # slots they write (prompt_len, prompt_len + 1) are within `length`
            for _ in range(min(2 if not graphs else 1, length - decoder.prompt_len)):
                step_fn(length)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            step_fn(length)
        graphs[length] = graph
        for tensor, saved in zip((decoder.token, decoder.slot, decoder.step), state):
            tensor.copy_(saved)
    for index, length in enumerate(lengths, start=1):
        graphs[length].replay()
        if progress:
            progress(index + 1)


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
    mode: str = "auto",
    compile_step: bool = False,
    num_tokens: int | None = None,
    pad_chunks: bool | None = None,
) -> torch.Tensor:
    """Sample `n` images' VQ codes for one prompt: [n, num_gen_tokens] int64 on the model's
    device. `num_tokens` draws only the first codes of each image (tests, benchmarks).

    pad_chunks: when the request runs in chunks, run each chunk's matmuls on as many rows as
    the whole request (the extra rows are padding, with no KV cache), so that the codes equal
    an unchunked run's exactly: GPU matmul libraries choose kernels, and so rounding, by row
    count. It costs no memory to speak of, and no time while the matmuls are memory-bound (a
    few dozen rows); None: on CUDA for requests of up to MAX_PADDED_ROWS rows."""
    weight = model.gen_embed.weight  # device and dtype of the model
    device = weight.device
    compile_step = compiles_step(mode, device, compile_step)
    mode = resolve_mode(mode, device)
    num_tokens = model.config.num_gen_tokens if num_tokens is None else num_tokens
    if not 1 <= num_tokens <= model.config.num_gen_tokens:
        raise ValueError(f"num_tokens must be in [1, {model.config.num_gen_tokens}], got {num_tokens}")
    length = len(prompt_ids)
    chunk_size = max(1, min(chunk_size or n, n))
    if pad_chunks is None:
        pad_chunks = device.type == "cuda" and 2 * n <= MAX_PADDED_ROWS
    batch_images = n if pad_chunks and chunk_size < n else None

    # Prefill once: row 0 conditional, row 1 unconditional. [2, T]
    ids = torch.tensor([prompt_ids, unconditional_ids(prompt_ids, pad_id)], device=device)
    prefix = StaticKVCache(model.config.language, 2, length, device, weight.dtype)
    positions = torch.arange(length, device=device).expand(2, length)
    hidden = model.hidden_states(model.embed_tokens(ids), positions, None, prefix.layers(), torch.arange(length, device=device))
    first_logits = model.image_logits(hidden[:, -1])  # [2, V]
    first = guided_logits(first_logits[0:1], first_logits[1:2], cfg_weight)  # [1, V]

    chunks = []
    n_chunks = (n + chunk_size - 1) // chunk_size
    for chunk_index, start in enumerate(range(0, n, chunk_size)):
        count = min(chunk_size, n - start)
        rows = torch.tensor([0] * count + [1] * count, device=device)
        cache = prefix.broadcast_rows(rows, cache_capacity(length, num_tokens, compile_step))
        noise = CounterNoise([seed] * count, range(start, start + count), first.shape[-1], device)
        first_token = sample(first.expand(count, -1), params, noise, torch.zeros((), dtype=torch.long, device=device))
        decoder = _ChunkDecoder(model, cache, length, count, cfg_weight, params, noise, first_token, num_tokens,
                                batch_images)
        report = None
        if progress is not None:
            done_before = chunk_index * num_tokens
            report = lambda done, base=done_before: progress(base + done, n_chunks * num_tokens)  # noqa: E731
        _run_chunk(decoder, mode, compile_step, report)
        chunks.append(decoder.codes)
        del cache, decoder
    return torch.cat(chunks)


@torch.inference_mode()
def decode_images(model: JanusModel, codes: torch.Tensor, batch_size: int = 4) -> torch.Tensor:
    """[n, num_gen_tokens] codes -> [n, 3, H, W] float32 pixels in roughly [-1, 1], decoded in
    the VQ decoder's dtype `batch_size` images at a time."""
    out = [model.decode_image_codes(codes[i : i + batch_size]).float() for i in range(0, codes.shape[0], batch_size)]
    return torch.cat(out)
