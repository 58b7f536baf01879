"""Numerical parity with transformers' Janus implementation on tiny random configs.

The transformers model is built with random weights; its state dict goes through our key map
(`keymap.from_transformers`) into our model, strictly; then features, logits, VQ decoding and
greedy / top-k=1 decoding are compared in float32.
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import JanusConfig as HFJanusConfig  # noqa: E402
from transformers import JanusForConditionalGeneration, JanusVisionConfig, JanusVQVAEConfig, LlamaConfig  # noqa: E402

from januspro import keymap  # noqa: E402
from januspro.config import JanusConfig  # noqa: E402
from januspro.generation.image import generate_image_codes  # noqa: E402
from januspro.generation.sampling import SamplingParams  # noqa: E402
from januspro.generation.text import TextDecoder, decode_tokens  # noqa: E402
from januspro.models.janus import JanusModel  # noqa: E402

IMAGE_ID, BOS, EOS, PAD, BOI = 3, 0, 1, 2, 4


@pytest.fixture(scope="module", params=[(4, False), (2, False), (2, True)], ids=["mha", "gqa", "gqa-fused"])
def pair(request: pytest.FixtureRequest) -> tuple[torch.nn.Module, JanusModel]:
    """fused: our model with the inference layout GPUs get (one q/k/v and one gate/up matmul)."""
    kv_heads, fused = request.param
    torch.manual_seed(0)
    text = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=256,
                       tie_word_embeddings=False, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    vision = JanusVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                               patch_size=8, mlp_ratio=2.0, projection_dim=64, depth=2, num_image_tokens=16)
    vq = JanusVQVAEConfig(embed_dim=8, num_embeddings=64, base_channels=32, channel_multiplier=[1, 1, 2],
                          num_res_blocks=1, latent_channels=32, projection_dim=64, num_hidden_layers=2,
                          image_token_embed_dim=64)
    config = HFJanusConfig(text_config=text, vision_config=vision, vq_config=vq, image_token_id=IMAGE_ID,
                           tie_word_embeddings=False)
    hf = JanusForConditionalGeneration(config).eval()
    with torch.no_grad():  # non-trivial norms and biases
        for p in hf.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    ours_config = JanusConfig.from_dict(config.to_dict())
    ours = JanusModel(ours_config).eval()
    state = dict(keymap.from_transformers(hf.state_dict().items()))
    ours.load_state_dict(state, strict=True)
    if fused:
        ours.language_model.model.fuse_weights()
    return hf, ours


def test_config_from_transformers_describes_same_model(pair):
    hf, ours = pair
    hf_count = sum(p.numel() for p in hf.parameters())
    ours_count = sum(p.numel() for p in ours.parameters())
    assert ours_count == hf_count
    assert ours.config.num_gen_tokens == hf.config.vision_config.num_image_tokens


def test_vision_features_and_aligner(pair):
    hf, ours = pair
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = hf.model.vision_model(pixels).last_hidden_state
        torch.testing.assert_close(ours.vision_model(pixels), expected)
        expected = hf.model.get_image_features(pixels).pooler_output
        torch.testing.assert_close(ours.encode_images(pixels), expected)


def _prompt(n_images: int, text_len: int = 7) -> torch.Tensor:
    ids = [BOS] + list(range(10, 10 + text_len))
    for _ in range(n_images):
        ids += [BOI] + [IMAGE_ID] * 16 + [5]
    return torch.tensor([ids + [20, 21]])


def test_understanding_logits(pair):
    hf, ours = pair
    ids = _prompt(2)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = hf(input_ids=ids, pixel_values=pixels).logits
        embeds = ours.embed_prompt(ids, ids == IMAGE_ID, ours.encode_images(pixels))
        positions = torch.arange(ids.shape[1])[None]
        hidden = ours.hidden_states(embeds, positions)
        torch.testing.assert_close(ours.text_logits(hidden), expected)


def test_left_padded_batch_logits(pair):
    hf, ours = pair
    long_ids, short_ids = _prompt(0, 9), _prompt(0, 4)
    pad = long_ids.shape[1] - short_ids.shape[1]
    ids = torch.cat([long_ids, torch.cat([torch.full((1, pad), PAD), short_ids], 1)])
    mask = ids != PAD
    mask[0] = True
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask.long()).logits[:, -1]
        decoder = TextDecoder(ours, 2, ids.shape[1] + 4)
        got = decoder.extend(ours.embed_tokens(ids), mask)
    torch.testing.assert_close(got, expected)


def test_generation_head_and_vq_decode(pair):
    hf, ours = pair
    hidden = torch.randn(5, 64)
    codes = torch.randint(0, 64, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(ours.image_logits(hidden), hf.model.generation_head(hidden))
        torch.testing.assert_close(ours.embed_image_codes(codes), hf.prepare_embeddings_for_image_generation(codes))
        torch.testing.assert_close(ours.decode_image_codes(codes), hf.model.vqmodel.decode(codes), atol=1e-4, rtol=1e-4)


def test_greedy_understanding_reproduces_reference_tokens(pair):
    hf, ours = pair
    ids = _prompt(1)
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = hf.generate(input_ids=ids, pixel_values=pixels, max_new_tokens=12, do_sample=False,
                               min_new_tokens=12, pad_token_id=PAD)[0, ids.shape[1]:].tolist()
        decoder = TextDecoder(ours, 1, ids.shape[1] + 12)
        logits = decoder.extend(ours.embed_prompt(ids, ids == IMAGE_ID, ours.encode_images(pixels)))
        got = [step[0] for step in decode_tokens(decoder, logits, SamplingParams(temperature=0), [0], 12, [])]
    assert got == expected


def test_top_k1_image_generation_reproduces_reference_tokens(pair):
    hf, ours = pair
    prompt = [BOS, 30, 31, 32, 33, BOI]
    hf.generation_config.pad_token_id = PAD
    hf.generation_config.bos_token_id = BOS
    hf.generation_config.generation_kwargs = {"boi_token_id": BOI}
    with torch.no_grad():
        expected = hf.generate(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                               generation_mode="image", do_sample=True, top_k=1,
                               guidance_scale=5.0, num_return_sequences=2)
        got = generate_image_codes(ours, prompt, PAD, n=2, cfg_weight=5.0, params=SamplingParams(top_k=1), seed=0)
    assert got.tolist() == expected.tolist()
