"""Small checkpoints with random weights, for tests, benchmarks and demos.

`tiny_config` describes a model of the official architecture with every size shrunk;
`write_random_checkpoint` writes a complete checkpoint folder (config, weights, tokenizer,
preprocessor and processor configs) that `januspro.load` reads like any other.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable

import torch

from januspro.config import AlignerConfig, GenHeadConfig, JanusConfig, LanguageConfig, VisionConfig, VQConfig
from januspro.processing.chat_format import DEFAULT_SYSTEM_PROMPT, JANUS_PRO, ChatFormat
from januspro.processing.image import ImageProcessor
from januspro.processing.tokenizer import BOI, BOS, EOI, EOS, IMAGE, PAD, TextTokenizer

SPECIAL_TOKENS = [BOS, EOS, PAD, IMAGE, BOI, EOI, "<|User|>", "<|Assistant|>"]

_SAMPLE_TEXT = [
    "You are a helpful language and vision assistant.",
    "Describe the image. What color is the circle? How many shapes are there?",
    "a red circle to the left of a blue square, a small green triangle in the top left",
    "The quick brown fox jumps over the lazy dog. 0123456789 ?!.,:;'\"()[]{}",
    "Résumé naïve café – ünïcödé ✓ 漢字 かな",
]


def tiny_config(
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int | None = None,
    vocab: int = 512,
    image_size: int = 32,
    patch: int = 8,
    gen_image_size: int = 32,
    codebook: int = 64,
    vq_ch: int = 32,
    vq_mult: tuple[int, ...] = (1, 1, 2),
    max_positions: int = 512,
) -> JanusConfig:
    """A Janus config of the official architecture with tiny sizes (random-weight tests)."""
    vision = VisionConfig(model_name="siglip_tiny", image_size=image_size, patch_size=patch, width=32,
                          layers=2, heads=2, mlp_ratio=2.0)
    language = LanguageConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 2,
                              num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                              max_position_embeddings=max_positions)
    gen_vision = VQConfig(codebook_size=codebook, codebook_embed_dim=8, ch=vq_ch, ch_mult=vq_mult,
                          z_channels=32, num_res_blocks=1, image_size=gen_image_size)
    return JanusConfig(
        vision=vision,
        aligner=AlignerConfig(input_dim=32, n_embed=hidden),
        gen_vision=gen_vision,
        gen_aligner=AlignerConfig(input_dim=8, n_embed=hidden),
        gen_head=GenHeadConfig(n_embed=hidden, image_token_embed=hidden, image_token_size=codebook),
        language=language,
    )


def train_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int | None = None) -> TextTokenizer:
    """A byte-level BPE tokenizer with Janus' special tokens (ids 0-7)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer)
    return TextTokenizer(backend, max_length=max_length)


def random_state(config: JanusConfig, seed: int = 0, std: float = 0.05) -> dict[str, torch.Tensor]:
    """Random tensors for every parameter and buffer of the model `config` describes."""
    from januspro.models.janus import JanusModel

    torch.manual_seed(seed)
    model = JanusModel(config)
    model.initialize_weights(std=std)
    # Non-trivial norms and biases so that parity tests exercise them.
    generator = torch.Generator().manual_seed(seed + 1)
    state = {}
    for name, tensor in model.state_dict().items():
        if tensor.dim() == 1 and tensor.is_floating_point() and not name.endswith("codebook_used"):
            tensor = tensor + 0.1 * torch.randn(tensor.shape, generator=generator)
        state[name] = tensor.clone()
    return state


def write_random_checkpoint(
    folder: str | Path,
    config: JanusConfig | None = None,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    tokenizer: TextTokenizer | None = None,
    fmt: ChatFormat = JANUS_PRO,
) -> Path:
    """Write a loadable checkpoint folder with random weights; returns the folder."""
    from januspro.engine import Janus
    from januspro.models.janus import JanusModel
    from januspro.processing.processor import JanusProcessor

    folder = Path(folder)
    config = config or tiny_config()
    tokenizer = tokenizer or train_tokenizer(_SAMPLE_TEXT * 4, min(config.language.vocab_size, 400))
    if tokenizer.vocab_size > config.language.vocab_size:
        raise ValueError("the tokenizer has more tokens than the model's vocabulary")
    model = JanusModel(config)
    model.load_state_dict(random_state(config, seed))
    processor = JanusProcessor(
        tokenizer,
        ImageProcessor(image_size=config.vision.image_size),
        fmt,
        config.num_image_tokens,
        config.language.max_position_embeddings,
        DEFAULT_SYSTEM_PROMPT,
    )
    Janus(model.eval(), processor).save(folder, dtype=dtype)
    return folder


def with_language(config: JanusConfig, **changes: object) -> JanusConfig:
    return replace(config, language=replace(config.language, **changes))
