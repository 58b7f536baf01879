"""oneDNN-packed linear layers (the CPU decode fast path): same outputs, same tokens, same
checkpoint, honest sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import januspro
from januspro import engine
from januspro.engine import ChatOptions, ImageOptions
from januspro.packed_linear import (
    UNPACK_ROWS, PackedLinear, pack_linear_layers, packing_supported, parameter_count, unpack_linear_layers, weight_bytes,
)

pytestmark = pytest.mark.skipif(not packing_supported(torch.device("cpu"), torch.float32),
                                reason="this PyTorch build or CPU cannot pack fp32 weights for oneDNN")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 2, 7, UNPACK_ROWS + 3])
def test_packed_linear_matches_linear(bias: bool, rows: int) -> None:
    """Few rows go through oneDNN, many through a temporary dense copy; both equal nn.Linear."""
    torch.manual_seed(0)
    linear = nn.Linear(48, 80, bias=bias)
    packed = PackedLinear(linear)
    x = torch.randn(rows, 48)
    with torch.no_grad():
        torch.testing.assert_close(packed(x), linear(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(packed(x.view(1, rows, 48)), linear(x).view(1, rows, 80), rtol=1e-5, atol=1e-5)


def test_packing_replaces_plain_linears_but_not_tied_ones() -> None:
    torch.manual_seed(0)
    embed = nn.Embedding(10, 6)
    model = nn.ModuleDict({"a": nn.Linear(6, 4), "b": nn.Sequential(nn.Linear(4, 6), nn.GELU()), "head": nn.Linear(6, 10)})
    model["head"].weight = embed.weight
    model["embed"] = embed
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count, size = parameter_count(model), weight_bytes(model)

    assert pack_linear_layers(model) == 2
    assert isinstance(model["a"], PackedLinear) and isinstance(model["b"][0], PackedLinear)
    assert type(model["head"]) is nn.Linear  # shares the embedding's weight: packing would copy it
    # Counting and saving see the packed weights as before.
    assert parameter_count(model) == count and weight_bytes(model) == size
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


def test_cpu_load_packs_the_llm_and_heads_and_draws_the_same_tokens(tiny_checkpoint, rgb_image, monkeypatch) -> None:
    """`januspro.load` on CPU packs the LLM, its heads and the generation aligner; images and
    answers are the same tokens as with plain linear layers for the same seed."""
    packed = januspro.load(tiny_checkpoint, device="cpu")
    monkeypatch.setattr(engine, "packing_supported", lambda device, dtype: False)
    plain = januspro.load(tiny_checkpoint, device="cpu")

    model = packed.model
    for part in (model.language_model, model.gen_head, model.gen_aligner):
        assert not any(type(m) is nn.Linear for m in part.modules())
    assert not any(isinstance(m, PackedLinear) for m in model.vision_model.modules())  # encoder: big batches
    assert not any(isinstance(m, PackedLinear) for m in plain.model.modules())
    assert parameter_count(packed.model) == parameter_count(plain.model) == plain.model.num_parameters()

    for seed in (0, 1):
        options = ImageOptions(n=3, seed=seed, cfg_weight=3.0)
        assert torch.equal(packed.generate_image_codes("a red circle", options)[0],
                           plain.generate_image_codes("a red circle", options)[0])
    for options in (ChatOptions(max_new_tokens=12), ChatOptions(max_new_tokens=12, temperature=0.9, seed=3)):
        assert (packed.chat("What is in the image?", [rgb_image], options).text
                == plain.chat("What is in the image?", [rgb_image], options).text)


def test_a_packed_model_saves_the_checkpoint_it_loaded(tiny_checkpoint, tmp_path) -> None:
    janus = januspro.load(tiny_checkpoint, device="cpu")
    assert any(isinstance(m, PackedLinear) for m in janus.model.modules())
    janus.save(tmp_path / "copy")
    again = januspro.load(tmp_path / "copy", device="cpu")
    saved, original = again.model.state_dict(), janus.model.state_dict()
    assert saved.keys() == original.keys()
    for key, value in original.items():
        assert torch.equal(saved[key], value), key


def test_unpacking_gives_trainable_linears_and_deepcopy_works(tiny_checkpoint) -> None:
    """Training starts from `januspro.load`, so it must get ordinary trainable layers back."""
    import copy

    janus = januspro.load(tiny_checkpoint, device="cpu")
    before = {k: v.clone() for k, v in janus.model.state_dict().items()}
    clone = copy.deepcopy(janus.model)
    assert any(isinstance(m, PackedLinear) for m in clone.modules())

    assert unpack_linear_layers(janus.model) > 0
    assert not any(isinstance(m, PackedLinear) for m in janus.model.modules())
    head = janus.model.gen_head.vision_head
    assert type(head) is nn.Linear and head.weight.requires_grad and head.bias.requires_grad
    for model in (janus.model, clone):
        after = model.state_dict()
        assert after.keys() == before.keys() and all(torch.equal(after[k], v) for k, v in before.items())
