"""The recipe of the bundled shapes-world model: everything from an empty folder to the
checkpoint shipped in `januspro/assets/shapes-model`, with the same model classes as the
official checkpoints (only smaller) and the same pipeline a user fine-tunes with.

    januspro train bundled --out src/januspro/assets/shapes-model   # about an hour on 2 CPU cores

Steps: shapes-world data (seeded) -> BPE tokenizer -> VQ tokenizer -> SigLIP-style ViT
pre-training -> LLM plain-text pre-training -> stage 1 -> stage 2 -> stage 3 -> export (bf16).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from januspro.bundled import BUNDLED_DIR
from januspro.config import AlignerConfig, GenHeadConfig, JanusConfig, LanguageConfig, VisionConfig, VQConfig
from januspro.device import pick_device
from januspro.errors import InputError
from januspro.models.janus import JanusModel
from januspro.processing.chat_format import JANUS_PRO
from januspro.processing.image import ImageProcessor, pil_to_pixels
from januspro.processing.processor import JanusProcessor
from januspro.training.components import ComponentTrainConfig, train_siglip, train_vq
from januspro.training.config import StageConfig, TrainConfig, preset_stage

log = logging.getLogger(__name__)


def bundled_config(vocab_size: int, hidden: int = 256, layers: int = 6, codebook: int = 512) -> JanusConfig:
    """The shapes-world model: 64 px images, 8 x 8 tokens in both pathways."""
    return JanusConfig(
        vision=VisionConfig(model_name="siglip_shapes_patch8_64", image_size=64, patch_size=8, width=128,
                            layers=4, heads=4, mlp_ratio=4.0),
        aligner=AlignerConfig(input_dim=128, n_embed=hidden),
        gen_vision=VQConfig(codebook_size=codebook, codebook_embed_dim=8, ch=16, ch_mult=(1, 2, 4, 4),
                            z_channels=64, num_res_blocks=1, norm_groups=8, image_size=64),
        gen_aligner=AlignerConfig(input_dim=8, n_embed=hidden),
        gen_head=GenHeadConfig(n_embed=hidden, image_token_embed=hidden, image_token_size=codebook),
        language=LanguageConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 11 // 4,
                                num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=512),
    )


@dataclass(frozen=True)
class Recipe:
    seed: int = 0
    scenes: int = 24000  # scene images in the dataset (each: 1 t2i record, 2 understanding records)
    text_records: int = 20000
    tokenizer_vocab: int = 768
    hidden: int = 256
    layers: int = 6
    codebook: int = 512
    component_images: int = 16000  # rendered in memory for the VQ and ViT trainers
    vq: ComponentTrainConfig = ComponentTrainConfig(steps=1500, batch_size=32, lr=2e-3, warmup_steps=50)
    siglip: ComponentTrainConfig = ComponentTrainConfig(steps=800, batch_size=64, lr=1e-3, warmup_steps=50)
    stages: tuple[StageConfig, ...] = field(default_factory=lambda: (
        StageConfig("lm", ("language_model",), {"text": 1.0}, steps=300, batch_size=64, lr=2e-3, warmup_steps=30),
        preset_stage("stage1", steps=300, batch_size=32, lr=2e-3, warmup_steps=30),
        preset_stage("stage2", steps=1800, batch_size=32, lr=1e-3, warmup_steps=60, uncond_prob=0.1),
        preset_stage("stage3", steps=600, batch_size=32, lr=4e-4, warmup_steps=30, lr_overrides={"vision_model": 2e-4},
                     uncond_prob=0.1),
    ))


def smoke_recipe(seed: int = 0) -> Recipe:
    """The whole pipeline on tiny data with a few steps per part (CI checks the recipe runs)."""
    tiny = ComponentTrainConfig(steps=3, batch_size=8, warmup_steps=1, restart_dead_every=2)
    return Recipe(
        seed=seed, scenes=48, text_records=48, tokenizer_vocab=400, hidden=64, layers=2, codebook=64,
        component_images=32, vq=tiny, siglip=tiny,
        stages=tuple(replace(s, steps=2, batch_size=8, warmup_steps=1) for s in Recipe().stages),
    )


def _texts_of(manifest: Path) -> list[str]:
    """Every string the model will read or write: prompts, messages, text records."""
    texts = []
    with manifest.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["kind"] == "text":
                texts.append(record["text"])
            elif record["kind"] == "t2i":
                texts.append(record["prompt"])
            else:
                texts += [m["content"].replace("<image_placeholder>\n", "") for m in record["messages"]]
    return texts


def build_bundled(
    out: Path | None = None,
    workdir: Path | None = None,
    smoke: bool = False,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    recipe: Recipe | None = None,
) -> Path:
    """Train the shapes-world model from scratch and export it to `out` (default: the
    package's bundled-model folder). Returns `out`."""
    from januspro.engine import Janus
    from januspro.shapes.dataset import iter_samples, write_dataset
    from januspro.testing import train_tokenizer
    from januspro.training.loop import run_training

    recipe = recipe or (smoke_recipe(seed) if smoke else Recipe(seed=seed))
    if out is None:
        if smoke:
            raise InputError("give --out for a smoke run (it would overwrite the bundled model)")
        out = BUNDLED_DIR
    workdir = workdir or out.parent / f"{out.name}-work"
    if (workdir / "train").exists():
        shutil.rmtree(workdir / "train")
    device_t = pick_device(device)
    began = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> None:
        timings[name] = round(time.perf_counter() - start, 1)
        log.info("%s done in %.1fs", name, timings[name])

    # 1. data
    start = time.perf_counter()
    manifest = write_dataset(workdir / "data", seed=recipe.seed, n_t2i=recipe.scenes,
                             n_understanding=2 * recipe.scenes, n_text=recipe.text_records, overwrite=True)
    data = manifest.parent
    lap("data", start)

    # 2. tokenizer, model, processor
    start = time.perf_counter()
    tokenizer = train_tokenizer(_texts_of(data / "manifest.jsonl"), recipe.tokenizer_vocab, max_length=512)
    vocab = (tokenizer.vocab_size + 63) // 64 * 64
    config = bundled_config(vocab, recipe.hidden, recipe.layers, recipe.codebook)
    torch.manual_seed(recipe.seed)
    model = JanusModel(config)
    model.initialize_weights()
    model.to(device_t)
    processor = JanusProcessor(tokenizer, ImageProcessor(image_size=64), JANUS_PRO, config.num_image_tokens,
                               config.language.max_position_embeddings, system_prompt="")
    lap("tokenizer", start)

    # 3. the pieces Janus takes off the shelf: VQ tokenizer, understanding ViT
    samples = iter_samples(recipe.seed, stream=7)
    pairs = [next(samples) for _ in range(recipe.component_images)]
    start = time.perf_counter()
    images = pil_to_pixels([s.image for s in pairs], 64).to(device_t)
    history_vq = train_vq(model.gen_vision_model, images, recipe.vq, progress=progress)
    lap("vq", start)
    start = time.perf_counter()
    pixels = processor.image_processor([s.image for s in pairs]).to(device_t)
    captions = [tokenizer.encode(s.scene.caption, add_bos=False) for s in pairs]
    history_vit = train_siglip(model.vision_model.vision_tower, pixels, captions, vocab, recipe.siglip, progress=progress)
    lap("siglip", start)
    del images, pixels

    # 4. LLM text pre-training and the three Janus stages
    start = time.perf_counter()
    janus = Janus(model, processor, name="shapes-world")
    train = TrainConfig(data=(str(data),), out=str(workdir / "train"), stages=recipe.stages, log_every=20)
    run_training(train, janus=janus, progress=progress)
    lap("stages", start)

    # 5. export in bf16 with a model card of how it was made
    tmp = out.parent / f".{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    janus.model.eval()
    janus.save(tmp, dtype=torch.bfloat16)
    shutil.copy(workdir / "train" / "loss.png", tmp / "loss.png")
    timings["total"] = round(time.perf_counter() - began, 1)
    card = {
        "name": "januspro shapes-world model",
        "command": "januspro train bundled" + (f" --seed {seed}" if seed else ""),
        "recipe": asdict(recipe),
        "seconds": timings,
        "parameters": model.num_parameters(),
        "vq_final": history_vq[-1] if history_vq else {},
        "siglip_final": history_vit[-1] if history_vit else {},
        "torch": torch.__version__,
    }
    (tmp / "training.json").write_text(json.dumps(card, indent=2, default=str) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log.info("bundled model written to %s in %.0fs", out, timings["total"])
    return out


def describe(recipe: Recipe) -> dict[str, Any]:
    return asdict(recipe)
