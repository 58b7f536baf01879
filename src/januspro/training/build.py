"""Building the bundled shapes-world model from its recipe (`training.recipe.Recipe`), phase by phase:

    data -> tokenizer and fresh model -> components (VQ tokenizer, its blank-patch codes and decoder
    fine-tune, the SigLIP-style ViT) -> stages (LM pre-training, stages 1-3) -> stage 4 (the ViT's
    dense loss, then the understanding fine-tune) -> export (bf16)

Each phase is a function, so that experiments can rerun one part. A build keeps its work in a work
folder whose `build_state.json` records the phases done: each finished phase leaves a checkpoint
there (with the global torch RNG state the next phase starts from) and the stages checkpoint every
`STAGE_SAVE_EVERY` steps, so `build_bundled(resume=True)` (`januspro train bundled --resume`)
continues an interrupted build where it stopped and makes the same model as an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from januspro.bundled import BUNDLED_DIR
from januspro.device import pick_device
from januspro.errors import InputError
from januspro.models.janus import JanusModel
from januspro.processing.chat_format import JANUS_PRO
from januspro.processing.image import ImageProcessor, pil_to_pixels
from januspro.processing.processor import JanusProcessor
from januspro.shapes.world import Scene
from januspro.training.components import tag_blank_patches, train_siglip, train_vq, tune_vq_decoder
from januspro.training.config import TrainConfig
from januspro.training.recipe import (
    BUNDLED_CANDIDATES,
    BUNDLED_CFG_WEIGHT,
    BUNDLED_IMAGE_TEMPERATURE,
    BUNDLED_RANKING_SHIFT,
    BUNDLED_VERIFY_ANSWERS,
    Recipe,
    bundled_config,
    smoke_recipe,
)

if TYPE_CHECKING:
    from PIL import Image

    from januspro.shapes.dataset import Sample

log = logging.getLogger(__name__)

BUILD_STATE = "build_state.json"
RNG_STATE = "rng_state.pt"
STAGE_SAVE_EVERY = 500  # steps between the stages' checkpoints (about 2.5 min on 2 CPU cores)


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


def make_data(recipe: Recipe, folder: Path) -> Path:
    """The shapes-world dataset; returns its folder. Scenes are drawn with the world's KIND_WEIGHTS (single 0.4,
    pair 0.4, count 0.2); a seed-2 build with 0.25 / 0.5 / 0.25 generated and answered worse (0.175 / 0.167 and
    0.623 / 0.631 against 0.235 / 0.198 and 0.694 / 0.706, ShapesEval seeds 7777 / 4242)."""
    from januspro.shapes.dataset import write_dataset

    manifest = write_dataset(folder, seed=recipe.seed, n_t2i=recipe.scenes, n_understanding=2 * recipe.scenes,
                             n_text=recipe.text_records, multi_turn=recipe.multi_turn,
                             text_paragraphs=recipe.text_paragraphs, paragraph_chats=recipe.paragraph_chats,
                             question_weights=recipe.question_weights,
                             overwrite=True)
    return manifest.parent


def make_model(recipe: Recipe, data: Path, device: torch.device):  # type: ignore[no-untyped-def]
    """Tokenizer (BPE over the dataset's texts), freshly initialised model, processor."""
    from januspro.engine import Janus
    from januspro.testing import train_tokenizer

    tokenizer = train_tokenizer(_texts_of(data / "manifest.jsonl"), recipe.tokenizer_vocab, max_length=512)
    vocab = (tokenizer.vocab_size + 63) // 64 * 64
    config = bundled_config(vocab, recipe.hidden, recipe.layers, recipe.codebook, recipe.vision_patch)
    torch.manual_seed(recipe.seed)
    model = JanusModel(config)
    model.initialize_weights()
    model.to(device)
    pixels = ImageProcessor(image_size=config.vision.image_size)  # what the understanding ViT reads
    processor = JanusProcessor(tokenizer, pixels, JANUS_PRO, config.num_image_tokens,
                               config.language.max_position_embeddings, system_prompt="", cfg_weight=BUNDLED_CFG_WEIGHT,
                               image_temperature=BUNDLED_IMAGE_TEMPERATURE, caption_grammar="shapes-world",
                               candidates=BUNDLED_CANDIDATES, ranking_shift=BUNDLED_RANKING_SHIFT,
                               verify_answers=BUNDLED_VERIFY_ANSWERS)
    return Janus(model, processor, name="shapes-world")


def component_samples(recipe: Recipe, count: int | None = None) -> list[Sample]:
    """The first `count` (default `recipe.component_images`) scenes and images of the stream the VQ and ViT
    trainers learn from (their own stream of the recipe's seed; rendering 12,000 takes about 1.5 s)."""
    from januspro.shapes.dataset import iter_samples

    samples = iter_samples(recipe.seed, stream=7)
    return [next(samples) for _ in range(recipe.component_images if count is None else count)]


def _vq_pixels(model: JanusModel, samples: Sequence[Sample]) -> torch.Tensor:
    """The samples' images as the VQ trainers read them: [N, 3, S, S] in [-1, 1] on the VQ's device, channels-last
    (the layout the VQ trains in)."""
    device = model.gen_vision_model.quant_conv.weight.device
    pixels = pil_to_pixels([s.image for s in samples], model.config.gen_vision.image_size).to(device)
    return pixels.contiguous(memory_format=torch.channels_last)


def train_components(recipe: Recipe, janus, progress: bool = True) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """The pieces Janus takes off the shelf: the VQ tokenizer (its decoder then fine-tuned on its final codes) and
    the understanding ViT."""
    model = janus.model
    pairs = component_samples(recipe)
    images = _vq_pixels(model, pairs)
    model.gen_vision_model.to(memory_format=torch.channels_last)
    history_vq = train_vq(model.gen_vision_model, images, recipe.vq, progress=progress)
    finals = {"vq": history_vq[-1] if history_vq else {}}
    if recipe.blank_patch_codes:
        history_tags = tag_blank_patches(model.gen_vision_model, images, recipe.vq_blank_codes, progress=progress)
        model.config = replace(model.config, gen_vision=model.gen_vision_model.config)
        finals["vq_blank_codes"] = history_tags[-1] if history_tags else {}
    if recipe.vq_decoder.steps:
        history_decoder = tune_vq_decoder(model.gen_vision_model, images, recipe.vq_decoder, progress=progress)
        finals["vq_decoder"] = history_decoder[-1]
    model.gen_vision_model.to(memory_format=torch.contiguous_format)
    if recipe.gen_embed_from_codebook:
        init_gen_embed_from_codebook(model)
    del images
    return finals | {"siglip": train_vit(recipe, janus, [s.scene for s in pairs], [s.image for s in pairs], progress)}


def train_vit(recipe: Recipe, janus, scenes: Sequence[Scene], images: Sequence[Image.Image],  # type: ignore[no-untyped-def]
              progress: bool = True) -> dict[str, float]:
    """SigLIP-style pre-training of the understanding ViT on `images` of `scenes` (phrases true of each scene,
    plus the per-patch contents where `recipe.siglip.dense_weight` > 0); returns the final losses."""
    from januspro.shapes.language import descriptions
    from januspro.shapes.world import patch_contents

    model, processor = janus.model, janus.processor
    device = model.vision_model.vision_tower.pos_embed.device
    pixels = processor.image_processor(images).to(device)
    index: dict[str, int] = {}
    positives = [[index.setdefault(text, len(index)) for text in descriptions(scene)] for scene in scenes]
    phrases = [processor.tokenizer.encode(text, add_bos=False) for text in index]
    targets = None
    if recipe.siglip.dense_weight > 0:
        patch = model.config.vision.patch_size
        targets = torch.from_numpy(np.stack([patch_contents(scene, patch, geometry=recipe.siglip.dense_geometry,
                                                            relations=recipe.siglip.dense_relations)
                                             for scene in scenes]))
    history = train_siglip(model.vision_model.vision_tower, pixels, phrases, positives,
                           model.config.language.vocab_size, recipe.siglip, progress=progress, patch_targets=targets)
    return history[-1] if history else {}


def polish_vq_decoder(recipe: Recipe, janus, progress: bool = True) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The build's last phase: the VQ decoder fine-tuned once more (`recipe.vq_decoder_final`) on the component
    images' codes, encoder and codebook frozen, so the codes the LLM learned keep their meaning. Returns its final
    losses ({} when it has no steps)."""
    if not recipe.vq_decoder_final.steps:
        return {}
    vq = janus.model.gen_vision_model
    images = _vq_pixels(janus.model, component_samples(recipe))
    vq.to(memory_format=torch.channels_last)
    try:
        history = tune_vq_decoder(vq, images, recipe.vq_decoder_final, name="vq decoder (final)", progress=progress)
    finally:
        vq.to(memory_format=torch.contiguous_format)
    return history[-1]


def init_gen_embed_from_codebook(model: JanusModel) -> None:
    """Copy the VQ tokenizer's codebook (the vectors its decoder reads, l2-normalised where the VQ
    normalises) into the LLM's generation input embedding, which has the same shape
    [codebook_size, codebook_embed_dim]."""
    with torch.no_grad():
        model.gen_embed.weight.copy_(model.gen_vision_model.quantize.codebook())


def train_stages(recipe: Recipe, janus, data: Path, out: Path, progress: bool = True,  # type: ignore[no-untyped-def]
                 resume: bool = False) -> Path:
    """LM pre-training and stages 1-3 (`recipe.stages`) into `out`, checkpointed every `STAGE_SAVE_EVERY` steps;
    `resume`: continue from the checkpoint in `out`."""
    from januspro.training.loop import run_training

    if out.exists() and not resume:
        shutil.rmtree(out)
    train = TrainConfig(data=(str(data),), out=str(out), stages=recipe.stages, log_every=20,
                        save_every=STAGE_SAVE_EVERY)
    return run_training(train, janus=janus, resume=resume, progress=progress)


def train_stage4_vit(recipe: Recipe, janus, progress: bool = True) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Stage 4, first part: the ViT's dense loss (`recipe.stage4_vit`) continued on `recipe.stage4_vit_images`
    component images. Returns its final losses ({} when it has no steps)."""
    if not recipe.stage4_vit.steps:
        return {}
    pairs = component_samples(recipe, recipe.stage4_vit_images)
    return train_vit(replace(recipe, siglip=recipe.stage4_vit), janus, [s.scene for s in pairs],
                     [s.image for s in pairs], progress)


def tune_understanding(recipe: Recipe, janus, workdir: Path, progress: bool = True,  # type: ignore[no-untyped-def]
                       resume: bool = False) -> Path:
    """Stage 4, second part: `recipe.stage4_understanding` (understanding and text only; None: skipped), then
    `recipe.stage4` (understanding-heavy, with t2i), both on stage 4's own data in `workdir/data4`, trained in
    `workdir/stage4` (`resume`: from its checkpoint there). Their loss rows are appended to the stages'
    `workdir/train/loss.csv` (as the stages after them) and the plot redrawn. Returns the stages' folder."""
    from januspro.shapes.dataset import write_dataset
    from januspro.training.loop import append_loss_csv, run_training
    from januspro.training.plot import plot_losses

    if recipe.stage4 is None:
        raise InputError("the recipe has no stage 4")
    counts = recipe.stage4_data
    data = write_dataset(workdir / "data4", seed=(recipe.seed + 11) % 1000, n_t2i=counts.get("t2i", 0),
                         n_understanding=counts.get("understanding", 0), n_text=counts.get("text", 0),
                         multi_turn=recipe.multi_turn, text_paragraphs=recipe.text_paragraphs,
                         question_weights=recipe.stage4_question_weights,
                         relation_inverse=recipe.stage4_relation_inverse, weights=recipe.stage4_scene_weights,
                         overwrite=True).parent
    out = workdir / "stage4"
    if out.exists() and not resume:
        shutil.rmtree(out)
    stages = tuple(s for s in (recipe.stage4_understanding, recipe.stage4) if s is not None)
    run_training(TrainConfig(data=(str(data),), out=str(out), stages=stages, log_every=20,
                             save_every=STAGE_SAVE_EVERY), janus=janus, resume=resume, progress=progress)
    stages_csv = workdir / "train" / "loss.csv"
    first = len(recipe.stages)  # stage 4's stages are numbered after the others
    if (out / "loss.csv").exists() and stages_csv.exists():
        with stages_csv.open(encoding="utf-8") as handle:  # (rows of an earlier try at stage 4 go)
            rows = [row for row in csv.DictReader(handle) if int(row["stage"]) < first]
        with (out / "loss.csv").open(encoding="utf-8") as handle:
            rows += [row | {"stage": str(first + int(row["stage"]))} for row in csv.DictReader(handle)]
        stages_csv.unlink()
        append_loss_csv(stages_csv, rows)
        plot_losses(stages_csv, workdir / "train" / "loss.png")
    return out


def export(janus, out: Path, card: dict[str, Any], loss_png: Path | None = None) -> Path:  # type: ignore[no-untyped-def]
    """Write the model in bf16 with a card saying how it was made, replacing `out`."""
    tmp = out.parent / f".{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    janus.model.eval()
    janus.save(tmp, dtype=torch.bfloat16)
    if loss_png is not None and loss_png.exists():
        shutil.copy(loss_png, tmp / "loss.png")
    (tmp / "training.json").write_text(json.dumps(card, indent=2, default=str) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def default_workdir(out: Path) -> Path:
    """Where the data and stage checkpoints of a build that exports to `out` go: beside `out`,
    but never inside the package (they would ship with it), however `out` is spelled."""
    package = BUNDLED_DIR.resolve().parent.parent
    work = out.parent / f"{out.name}-work"
    return Path("runs/bundled-work") if work.resolve().is_relative_to(package) else work


# ------------------------------------------------------------------------------------ resumable build


def _recipe_json(recipe: Recipe) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(recipe), default=str))


def _read_state(workdir: Path, recipe: Recipe) -> dict[str, Any]:
    """The progress of the build in `workdir`, which must be of `recipe`."""
    path = workdir / BUILD_STATE
    if not path.exists():
        raise InputError(f"nothing to resume: {path} does not exist (start the build without --resume)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        state = {"recipe": state["recipe"], "done": list(state["done"]), "seconds": dict(state["seconds"]),
                 "finals": dict(state["finals"])}
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path} is not a build state ({error!r}); start the build again without --resume") from None
    if state["recipe"] != _recipe_json(recipe):
        raise InputError(f"the build in {workdir} is of another recipe (seed or --smoke differ); resume it with the "
                         "options it was started with, or start again without --resume")
    return state


def _write_state(workdir: Path, state: dict[str, Any]) -> None:
    tmp = workdir / f".{BUILD_STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(workdir / BUILD_STATE)


def _save_phase(janus, folder: Path) -> None:  # type: ignore[no-untyped-def]
    """The model after a phase (fp32, a loadable checkpoint) and the global torch RNG state the next phase starts
    from, written whole or not at all."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    janus.save(tmp, dtype=torch.float32)
    _save_rng(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def _save_rng(folder: Path) -> None:
    """The global torch RNG state the next phase starts from, beside a phase's checkpoint in `folder`."""
    torch.save(torch.get_rng_state(), folder / RNG_STATE)


def _load_phase(folder: Path, device: torch.device):  # type: ignore[no-untyped-def]
    """The model and global torch RNG state a phase left in `folder`, ready to train on (training layout, fp32)."""
    from januspro.engine import load, undo_inference_layout

    if not (folder / RNG_STATE).is_file():
        raise InputError(f"{folder} holds no finished phase of a build ({RNG_STATE} is missing); start the build "
                         "again without --resume")
    janus = load(folder, device=device, dtype=torch.float32)
    undo_inference_layout(janus.model)
    torch.set_rng_state(torch.load(folder / RNG_STATE, weights_only=True))
    return janus


def build_bundled(
    out: Path | None = None,
    workdir: Path | None = None,
    smoke: bool = False,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    recipe: Recipe | None = None,
    resume: bool = False,
) -> Path:
    """Train the shapes-world model from scratch and export it to `out` (default: the package's bundled-model
    folder). Returns `out`. `resume`: continue the build of the same recipe in `workdir` from its last
    checkpoint (the result is the model an uninterrupted build makes)."""
    recipe = recipe or (smoke_recipe(seed) if smoke else Recipe(seed=seed))
    if out is None:
        if smoke:
            raise InputError("give --out for a smoke run (it would overwrite the bundled model)")
        out = BUNDLED_DIR
    workdir = workdir if workdir is not None else default_workdir(out)
    device_t = pick_device(device)
    if resume:
        state = _read_state(workdir, recipe)
        log.info("resuming the build in %s after: %s", workdir, ", ".join(state["done"]) or "nothing")
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        state = {"recipe": _recipe_json(recipe), "done": [], "seconds": {}, "finals": {}}
        _write_state(workdir, state)
    done, seconds, finals = state["done"], state["seconds"], state["finals"]
    mark = [time.perf_counter()]

    def finish(phase: str, checkpoint: Any = None) -> None:
        """Record `phase` as done (after its checkpoint, if any, is written) with its seconds."""
        if checkpoint is not None:
            _save_phase(*checkpoint)
        now = time.perf_counter()
        seconds[phase] = round(now - mark[0], 1)
        mark[0] = now
        if phase not in done:
            done.append(phase)
        _write_state(workdir, state)
        log.info("%s done in %.1fs", phase, seconds[phase])

    checkpoints = {"components": workdir / "components", "stages": workdir / "train",
                   "stage4_vit": workdir / "stage4_vit", "stage4": workdir / "stage4",
                   "decoder": workdir / "decoder"}  # in build order
    janus = None
    for phase in reversed(checkpoints):  # the latest finished phase's model
        if phase in done:
            janus = _load_phase(checkpoints[phase], device_t)
            break
    data = workdir / "data"
    if "data" not in done:
        make_data(recipe, data)
        finish("data")
    if "components" not in done:
        janus = make_model(recipe, data, device_t)
        finish("tokenizer")
        finals.update(train_components(recipe, janus, progress))
        finish("components", (janus, checkpoints["components"]))
    if "stages" not in done:
        train_stages(recipe, janus, data, checkpoints["stages"], progress,
                     resume=resume and (checkpoints["stages"] / "trainer_state.pt").exists())
        _save_rng(checkpoints["stages"])
        finish("stages")
    if recipe.stage4 is not None:
        if "stage4_vit" not in done:
            finals["stage4_vit"] = train_stage4_vit(recipe, janus, progress)
            finish("stage4_vit", (janus, checkpoints["stage4_vit"]))
        if "stage4" not in done:
            tune_understanding(recipe, janus, workdir, progress,
                               resume=resume and (checkpoints["stage4"] / "trainer_state.pt").exists())
            _save_rng(checkpoints["stage4"])
            finish("stage4")
    if recipe.vq_decoder_final.steps and "decoder" not in done:
        finals["vq_decoder_final"] = polish_vq_decoder(recipe, janus, progress)
        finish("decoder", (janus, checkpoints["decoder"]))
    assert janus is not None  # every path above made or loaded it
    timings = {name: seconds[name] for name in ("data", "tokenizer", "components", "stages") if name in seconds}
    if recipe.stage4 is not None:
        timings["stage4"] = round(seconds.get("stage4_vit", 0.0) + seconds.get("stage4", 0.0), 1)
    if "decoder" in seconds:
        timings["decoder"] = seconds["decoder"]
    timings["total"] = round(sum(seconds.values()), 1)
    card = {
        "name": "januspro shapes-world model",
        "command": "januspro train bundled" + (f" --seed {seed}" if seed else ""),
        "recipe": asdict(recipe),
        "seconds": timings,
        "parameters": janus.model.num_parameters(),
        "components_final": finals,
        "torch": torch.__version__,
    }
    export(janus, out, card, workdir / "train" / "loss.png")
    log.info("bundled model written to %s in %.0fs", out, timings["total"])
    return out
