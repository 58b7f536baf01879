"""Checks that need a CUDA GPU (skipped without one): the fast paths that exist only there,
in the dtype users run them in, against the plain paths."""

from __future__ import annotations

import pytest
import torch

import januspro
from januspro import ImageOptions
from januspro.generation.image import CUDA_RESERVE_BYTES, generate_image_codes, plan_chunks
from januspro.generation.sampling import SamplingParams

pytestmark = pytest.mark.gpu

PROMPT = "a red circle to the left of a blue square"


def test_bundled_model_on_gpu_bf16_graph_equals_static_and_chunking_changes_nothing(monkeypatch) -> None:
    from januspro.generation import image

    monkeypatch.setattr(image, "ATTENTION_BUCKET", 16)  # several captured graphs per request
    monkeypatch.setattr(image, "BUCKET_MIN_KV_SHARE", 0.0)
    janus = januspro.load(device="cuda")  # bf16, CUDA-graph decoding: what a user gets
    assert janus.model.gen_embed.weight.dtype == torch.bfloat16
    ids = janus.processor.generation_prompt(PROMPT)
    pad = janus.processor.tokenizer.special.pad
    params = SamplingParams(1.0)
    static = generate_image_codes(janus.model, ids, pad, n=4, cfg_weight=2.0, params=params, seed=5, mode="static")
    graph = generate_image_codes(janus.model, ids, pad, n=4, cfg_weight=2.0, params=params, seed=5, mode="cuda_graph")
    assert torch.equal(static, graph)
    whole = janus.generate_images(PROMPT, ImageOptions(n=4, seed=5))
    per_image = plan_chunks(janus.model, 4, len(ids), None).bytes_per_image
    budget_gb = (torch.cuda.memory_allocated() + CUDA_RESERVE_BYTES + 1.5 * per_image) / 2**30  # one image at a time
    chunked = janus.generate_images(PROMPT, ImageOptions(n=4, seed=5, memory_budget_gb=budget_gb))
    assert whole.chunk_size == 4 and chunked.chunk_size < 4
    assert torch.equal(whole.codes, chunked.codes)
    answer = janus.chat("What color is the circle?", images=[whole.images[0]])
    assert answer.text.strip() and answer.finish_reason in ("stop", "length")


def test_int8_on_gpu_keeps_logits_close(tiny_checkpoint) -> None:
    full = januspro.load(tiny_checkpoint, device="cuda", dtype="bfloat16")
    int8 = januspro.load(tiny_checkpoint, device="cuda", dtype="bfloat16", quantize="int8")
    ids = torch.tensor([full.processor.tokenizer.encode(PROMPT)], device="cuda")
    positions = torch.arange(ids.shape[1], device="cuda")[None]
    with torch.inference_mode():
        a = full.model.hidden_states(full.model.embed_tokens(ids), positions)
        b = int8.model.hidden_states(int8.model.embed_tokens(ids), positions)
        for head in ("text_logits", "image_logits"):
            x, y = getattr(full.model, head)(a).float().flatten(), getattr(int8.model, head)(b).float().flatten()
            assert torch.nn.functional.cosine_similarity(x, y, dim=0) >= 0.99, head
    result = int8.generate_images("a red circle", ImageOptions(n=2, seed=1))
    assert len(result.images) == 2
