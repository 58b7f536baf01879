"""Text decoding for understanding: prefill, then one token per step over a static KV cache.

`TextDecoder` holds the cache of a batch of sequences (left-padded prompts) and grows a
conversation turn by turn: `extend` feeds a chunk of embeddings (a prompt, or the next user
turn of a chat) and `step` feeds one sampled token per row. `decode_tokens` is the sampling
loop on top; it yields each step's tokens so that callers can stream and stop.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

from januspro.generation.kv_cache import StaticKVCache
from januspro.generation.sampling import CounterNoise, SamplingParams, sample
from januspro.models.janus import JanusModel


class TextDecoder:
    """Incremental decoding state of `batch` sequences."""

    def __init__(self, model: JanusModel, batch: int, capacity: int, mode: str = "auto", compile: bool = False) -> None:
        """mode: "eager" attends over exactly the filled slots; "static" runs every step with
        the same shapes (whole cache, masked); "cuda_graph" replays a captured static step;
        "auto" is cuda_graph on CUDA, eager elsewhere. compile: the static step goes through
        torch.compile first (fused kernels; the first step of each new shape compiles), for
        the static and cuda_graph modes."""
        weight = model.language_model.model.embed_tokens.weight
        self.model = model
        self.device = weight.device
        if mode == "auto":
            mode = "cuda_graph" if weight.device.type == "cuda" else "eager"
        if mode not in ("eager", "static", "cuda_graph"):
            raise ValueError(f"unknown decode mode {mode!r}")
        self.mode = mode
        self._step_fn = self._static_step
        if compile and mode != "eager":
            self._step_fn = torch.compile(self._static_step, fullgraph=True)
        self._graph: tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor] | None = None
        self.cache = StaticKVCache(model.config.language, batch, capacity, weight.device, weight.dtype)
        self.valid = torch.zeros(batch, capacity, dtype=torch.bool, device=weight.device)  # slot holds a token
        self.next_pos = torch.zeros(batch, dtype=torch.long, device=weight.device)  # rotary position of the next token
        self.length = 0  # slots used (shared by all rows)
        self.padded = False  # some slot is padding: attention needs an explicit mask

    @property
    def batch(self) -> int:
        return self.cache.batch

    def _reserve(self, extra: int) -> None:
        needed = self.length + extra
        if needed > self.cache.capacity:
            capacity = max(needed, 2 * self.cache.capacity)
            self.cache = self.cache.grown(capacity)
            valid = self.valid.new_zeros(self.batch, capacity)
            valid[:, : self.valid.shape[1]] = self.valid
            self.valid = valid
            self._graph = None  # captured over the old buffers

    def extend(self, embeds: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Feed [B, T, D] embeddings (left padding marked False in `mask` [B, T]); return the
        text logits [B, vocab] after the last position."""
        batch, tokens, _ = embeds.shape
        self._reserve(tokens)
        start = self.length
        if mask is None:
            mask = torch.ones(batch, tokens, dtype=torch.bool, device=self.device)
        elif not bool(mask.all()):
            self.padded = True
        positions = self.next_pos[:, None] + (mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, T]
        self.valid[:, start : start + tokens] = mask
        attn: torch.Tensor | None = None
        if self.padded or start > 0:
            causal = torch.ones(tokens, tokens, dtype=torch.bool, device=self.device).tril()
            # Padding queries attend to themselves only (their output is never used; this keeps
            # softmax finite).
            own = (causal[None] & mask[:, None, :]) | torch.eye(tokens, dtype=torch.bool, device=self.device)
            past = self.valid[:, None, :start].expand(batch, tokens, start)
            attn = torch.cat([past, own], dim=-1)[:, None]  # [B, 1, T, start + T]
        slots = torch.arange(start, start + tokens, device=self.device)
        hidden = self.model.hidden_states(embeds, positions, attn, self.cache.layers(start + tokens), slots)
        self.length += tokens
        self.next_pos += mask.sum(-1)
        return self.model.text_logits(hidden[:, -1])

    def rewind(self, length: int) -> None:
        """Forget every slot from `length` on (what was fed after the first `length` slots): the next tokens fed
        take their slots and rotary positions."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot rewind to {length} of {self.length} slots")
        self.next_pos -= self.valid[:, length:self.length].sum(-1)
        self.valid[:, length:] = False
        self.length = length

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row ([B] ids); return the next logits [B, vocab]."""
        self._reserve(1)
        if self.mode == "eager":
            logits = self._eager_step(tokens)
        elif self.mode == "static":
            logits = self._step_fn(tokens, torch.full((), self.length, dtype=torch.long, device=self.device))
        else:
            logits = self._graph_step(tokens)
        self.length += 1
        return logits

    def _eager_step(self, tokens: torch.Tensor) -> torch.Tensor:
        slot = self.length
        self.valid[:, slot] = True
        embeds = self.model.embed_tokens(tokens[:, None])
        mask = self.valid[:, None, None, : slot + 1] if self.padded else None
        slots = torch.full((1,), slot, dtype=torch.long, device=self.device)
        hidden = self.model.hidden_states(embeds, self.next_pos[:, None], mask, self.cache.layers(slot + 1), slots)
        self.next_pos += 1
        return self.model.text_logits(hidden[:, -1])

    def _static_step(self, tokens: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        """Fixed shapes, device-side slot: attends over the whole cache, masked."""
        self.valid.index_fill_(1, slot.view(1), True)
        embeds = self.model.embed_tokens(tokens[:, None])
        mask = self.valid[:, None, None, :]  # unwritten slots are not valid yet
        hidden = self.model.hidden_states(embeds, self.next_pos[:, None], mask, self.cache.layers(), slot.view(1))
        self.next_pos += 1
        return self.model.text_logits(hidden[:, -1])

    def _graph_step(self, tokens: torch.Tensor) -> torch.Tensor:
        if self._graph is None:
            self._graph = self._capture()
        graph, token_in, slot_in = self._graph
        token_in.copy_(tokens)
        slot_in.fill_(self.length)
        graph.replay()
        return self._graph_logits

    def _capture(self) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        """Capture one static step. Warm-up runs write into the slot about to be used and
        advance positions; both are restored before the first replay."""
        token_in = torch.zeros(self.batch, dtype=torch.long, device=self.device)
        slot_in = torch.full((), self.length, dtype=torch.long, device=self.device)
        saved_pos, saved_valid = self.next_pos.clone(), self.valid.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._step_fn(token_in, slot_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._graph_logits = self._step_fn(token_in, slot_in)
        self.next_pos.copy_(saved_pos)
        self.valid.copy_(saved_valid)
        return graph, token_in, slot_in


def decode_tokens(
    decoder: TextDecoder,
    logits: torch.Tensor,
    params: SamplingParams,
    seeds: Sequence[int],
    max_new_tokens: int,
    stop_ids: Sequence[int],
) -> Iterator[list[int | None]]:
    """Sample up to `max_new_tokens` tokens per row, starting from `logits` [B, vocab].

    Yields, per step, one entry per row: the new token id, or None once that row has stopped
    (a stop token is yielded, then None). Ends when every row has stopped or the budget is
    spent. After the loop the decoder's cache holds every yielded token except the last
    step's (callers that continue a conversation feed it with `decoder.step`)."""
    batch = logits.shape[0]
    noise = CounterNoise(seeds, [0] * batch, logits.shape[-1], logits.device)
    step = torch.zeros((), dtype=torch.long, device=logits.device)
    done = [False] * batch
    stops = set(stop_ids)
    for index in range(max_new_tokens):
        tokens = sample(logits, params, noise, step)
        host = tokens.tolist()  # the one sync per step: streaming and stopping need the ids
        out: list[int | None] = []
        for row, token in enumerate(host):
            if done[row]:
                out.append(None)
            else:
                out.append(token)
                done[row] = token in stops
        yield out
        if all(done) or index == max_new_tokens - 1:
            return
        logits = decoder.step(tokens)
        step += 1
