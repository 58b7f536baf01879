"""The training loop: a plain loop over stages and steps.

    for stage in config.stages:
        freeze everything but the stage's groups; AdamW over what trains
        for step in stage:
            lr from warm-up + cosine
            global batch of step (a pure function of seed and step), this process's share
            micro-batches: forward -> loss sums / step token counts -> backward
            clip, step, weight average (optional), log (CSV), checkpoint (resumable exactly)

Run it in one process, or under `torchrun` (DDP, or FSDP with `strategy="fsdp"`): each process
takes every world-th sample of the same global batch and the losses are normalised by the
token counts of the whole step, so N processes train the same model as one.
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from januspro.device import pick_device
from januspro.engine import Janus, undo_inference_layout
from januspro.errors import InputError
from januspro.loading import save_weights
from januspro.models.janus import JanusModel
from januspro.processing.processor import JanusProcessor
from januspro.training import distributed as D
from januspro.training.config import StageConfig, TrainConfig
from januspro.training.data import MixedSampler, SequenceEncoder, read_records
from januspro.training.ema import WeightAverage
from januspro.training.lora import apply_lora, lora_state, merged_state, load_lora_state
from januspro.training.losses import JanusObjective
from januspro.training.plot import plot_losses
from januspro.training.pool import DataPool

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
CSV_FIELDS = ["stage", "step", "loss", "text_loss", "image_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"]


@dataclass
class RunState:
    """Where a run is: stage index and steps done in it."""

    stage: int = 0
    step: int = 0


def learning_rate(stage: StageConfig, step: int, base: float) -> float:
    """Linear warm-up, then cosine decay to `base * min_lr_ratio`."""
    if step < stage.warmup_steps:
        return base * (step + 1) / stage.warmup_steps
    progress = (step - stage.warmup_steps) / max(1, stage.steps - stage.warmup_steps)
    floor = base * stage.min_lr_ratio
    return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def micro_batches(picks: list[tuple[str, int, bool]], grad_accum: int, by_kind: bool) -> list[list[tuple[str, int, bool]]]:
    """Split one process's share of a step into `grad_accum` micro-batches and, with `by_kind`,
    each of those by kind (text, understanding, t2i): rows are padded to the longest in their
    micro-batch, and a 15-token text row padded to an 80-token image row is wasted compute.
    The step's gradient is the same (losses are sums over tokens). Under DDP the processes may
    run different numbers of micro-batches (they meet only in the last one's backward); under
    FSDP every forward gathers the shards, so every process must run as many as the others and
    rows are not grouped."""
    chunks = [picks[i::grad_accum] for i in range(grad_accum)]
    if not by_kind:
        return chunks
    return [part for chunk in chunks for kind in ("text", "understanding", "t2i")
            if (part := [p for p in chunk if p[0] == kind])]


def set_trainable(model: JanusModel, stage: StageConfig, lora: bool) -> None:
    """Freeze all but the stage's groups. With LoRA the LLM trains through its adapters only;
    the ViT's attention-pool head never trains (it is not on Janus' path)."""
    model.requires_grad_(False)
    for name in stage.trainable:
        for param_name, param in getattr(model, name).named_parameters():
            if ".attn_pool." in f".{param_name}" or (name == "language_model" and lora and "lora_" not in param_name):
                continue
            param.requires_grad_(True)


def trainable_groups(model: JanusModel) -> list[tuple[str, list[nn.Parameter]]]:
    """(group, parameters) that train, read after any FSDP wrapping (which replaces the
    parameter objects)."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault(name.split(".")[0], []).append(param)
    return list(groups.items())


def build_optimizer(groups: list[tuple[str, list[nn.Parameter]]], stage: StageConfig) -> torch.optim.Optimizer:
    param_groups = []
    for name, params in groups:
        lr = stage.lr_overrides.get(name, stage.lr)
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        for subset, wd in ((decay, stage.weight_decay), (no_decay, 0.0)):
            if subset:
                param_groups.append({"params": subset, "lr": lr, "base_lr": lr, "weight_decay": wd, "group": name})
    return torch.optim.AdamW(param_groups, lr=stage.lr, betas=stage.betas, eps=1e-8)


def autocast_context(precision: str, device: torch.device):  # type: ignore[no-untyped-def]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if precision == "auto" and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def save_checkpoint(out: Path, model: JanusModel, processor: JanusProcessor, state: dict[str, torch.Tensor],
                    trainer_state: dict[str, Any], info: D.DistInfo) -> None:
    """Write a loadable checkpoint folder (official layout, fp32) plus the trainer state,
    atomically: into a temporary folder, then moved over the old files."""
    if not info.is_main:
        return
    tmp = out / ".saving"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_weights(state, model.config, tmp)
    processor.save(tmp)
    torch.save(trainer_state, tmp / STATE_FILE)
    for item in tmp.iterdir():
        item.replace(out / item.name)
    tmp.rmdir()


def append_loss_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append loss rows (`CSV_FIELDS`) to the CSV at `path`, writing its header first where it is new."""
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def _truncate_csv(path: Path, stage: int, step: int) -> None:
    """Drop rows logged after the checkpoint being resumed (they will be logged again)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    keep = [r for r in rows if (int(r["stage"]), int(r["step"])) <= (stage, step)]
    path.unlink()
    if keep:
        append_loss_csv(path, keep)


def run_training(
    config: TrainConfig,
    janus: Janus | None = None,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Train `janus` (or the model of `config.init`) through `config.stages`; returns the
    output folder, a checkpoint `januspro.load` reads."""
    from januspro.engine import load

    device = pick_device(config.device)
    info = D.init_distributed(device)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    out = Path(config.out)
    state_path = out / STATE_FILE
    if state_path.exists() and not resume:
        raise InputError(f"{out} already holds a training checkpoint; pass --resume to continue it or choose another --out")
    if resume and not state_path.exists():
        raise InputError(f"nothing to resume: {state_path} does not exist")
    if janus is None:
        if config.init is None:
            raise InputError("the training config names no model to start from (init)")
        janus = load(config.init, device=device, dtype=torch.float32)
    model, processor = janus.model, janus.processor
    undo_inference_layout(model)  # packed CPU weights, fused projections, channels-last VQ
    if model.gen_embed.weight.dtype != torch.float32:
        model.float()
    model.to(device, memory_format=torch.contiguous_format)  # (FSDP needs contiguous tensors)
    lora = config.lora is not None
    if lora:
        apply_lora(model.language_model, config.lora)  # type: ignore[arg-type]
        model.to(device)

    run = RunState()
    trainer_state: dict[str, Any] = {}
    if resume:
        trainer_state = torch.load(state_path, map_location="cpu", weights_only=False)
        run = RunState(trainer_state["stage"], trainer_state["step"])
        resumed = load(out, device=device, dtype=torch.float32).model.state_dict()
        if lora:
            load_lora_state(model.language_model, trainer_state["lora"])
            resumed = {k: v for k, v in resumed.items() if not k.startswith("language_model.")}
        model.load_state_dict(resumed, strict=not lora)
        _truncate_csv(out / "loss.csv", run.stage, run.step)
        log.info("resuming at stage %d step %d", run.stage, run.step)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / "train_config.json")

    records = read_records(config.data, strict=config.strict_data)
    pool = DataPool(records, processor, model)
    if config.gradient_checkpointing:
        model.language_model.model.gradient_checkpointing = True

    for stage_index, stage in enumerate(config.stages):
        if stage_index < run.stage:
            continue
        start = run.step if stage_index == run.stage else 0
        if start >= stage.steps:
            continue
        resumed_state = trainer_state if (resume and stage_index == run.stage and start > 0) else {}
        _train_stage(config, stage, stage_index, start, model, processor, pool, info, device, resumed_state,
                     out, lora, progress, on_step)
        run = RunState(stage_index + 1, 0)
        trainer_state = {}
    plot_losses(out / "loss.csv", out / "loss.png") if info.is_main and (out / "loss.csv").exists() else None
    D.barrier(info)
    return out


def _train_stage(config: TrainConfig, stage: StageConfig, stage_index: int, start: int, model: JanusModel,
                 processor: JanusProcessor, pool: DataPool, info: D.DistInfo, device: torch.device,
                 resumed_state: dict[str, Any], out: Path, lora: bool, progress: bool,
                 on_step: Callable[[dict[str, Any]], None] | None) -> None:
    """Steps `start` .. `stage.steps` of one stage; `resumed_state` is the trainer state of the
    checkpoint being resumed mid-stage (empty otherwise)."""
    from tqdm import tqdm

    set_trainable(model, stage, lora)
    model.train()
    model.gen_vision_model.eval()  # frozen tokenizer: inference behaviour
    objective = D.wrap(JanusObjective(model), info, config.strategy, device)
    groups = trainable_groups(model)
    optimizer = build_optimizer(groups, stage)
    if resumed_state:
        D.load_optimizer_state(objective, optimizer, resumed_state["optimizer"], info)
    average = None
    if stage.ema_decay:
        average = WeightAverage({n: p for n, p in model.named_parameters() if p.requires_grad}, stage.ema_decay)
        if resumed_state:
            if "ema" not in resumed_state:
                raise InputError(f"stage {stage.name}: the checkpoint being resumed has no weight averages "
                                 "(it was saved with ema_decay 0)")
            average.load_state_dict(resumed_state["ema"])
    sampler = MixedSampler(pool.counts(), stage.mix, stage.seed, stage.uncond_prob)
    encoder = SequenceEncoder(processor, config.system_prompt, stage.mask_prompt)
    per_rank = stage.batch_size // info.world
    if per_rank * info.world != stage.batch_size or per_rank < stage.grad_accum:
        raise InputError(f"stage {stage.name}: batch_size {stage.batch_size} must split into {info.world} processes "
                         f"x {stage.grad_accum} micro-batches")
    trainable = [p for _, params in groups for p in params]
    bar = tqdm(total=stage.steps, initial=start, desc=stage.name, disable=not (progress and info.is_main),
               file=None, dynamic_ncols=True)
    rows: list[dict[str, Any]] = []
    began = time.perf_counter()
    for step in range(start, stage.steps):
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(stage, step, group["base_lr"])
        picks = sampler.batch(step, stage.batch_size)[info.rank :: info.world]
        micro = micro_batches(picks, stage.grad_accum, by_kind=not info.enabled or config.strategy == "ddp")
        batches = [pool.batch(chunk, encoder).to(device) for chunk in micro]
        n_text, n_image = D.all_reduce_sum([sum(b.text_tokens for b in batches), sum(b.image_tokens for b in batches)], info, device)
        text_total = image_total = 0.0
        for index, batch in enumerate(batches):
            with D.no_sync(objective, index == len(batches) - 1), autocast_context(config.precision, device):
                text_sum, image_sum = objective(batch)
            loss = text_sum * 0.0
            if n_text:
                loss = loss + stage.text_loss_weight * text_sum / n_text
            if n_image:
                loss = loss + stage.image_loss_weight * image_sum / n_image
            (loss * info.world).backward()
            text_total += float(text_sum.detach())
            image_total += float(image_sum.detach())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, stage.grad_clip))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if average is not None:
            average.update(step + 1)
        text_total, image_total = D.all_reduce_sum([text_total, image_total], info, device)
        text_loss = text_total / n_text if n_text else float("nan")
        image_loss = image_total / n_image if n_image else float("nan")
        row = {
            "stage": stage_index, "step": step + 1,
            "loss": (stage.text_loss_weight * (text_loss if n_text else 0.0) + stage.image_loss_weight * (image_loss if n_image else 0.0)),
            "text_loss": text_loss, "image_loss": image_loss, "lr": optimizer.param_groups[0]["lr"],
            "grad_norm": grad_norm, "tokens_per_s": (n_text + n_image) / max(time.perf_counter() - tick, 1e-9),
            "elapsed_s": time.perf_counter() - began,
        }
        if on_step is not None:
            on_step(row)
        rows.append(row)
        bar.update(1)
        bar.set_postfix(text=f"{text_loss:.3f}", image=f"{image_loss:.3f}", refresh=False)
        last = step + 1 == stage.steps
        save = last or bool(config.save_every and (step + 1) % config.save_every == 0)
        if info.is_main and (len(rows) >= config.log_every or save):
            append_loss_csv(out / "loss.csv", rows)  # rows up to a checkpoint are never lost
            rows = []
        if save:
            if last and average is not None:
                average.copy_to_params()  # the stage ends on its averaged weights
            _checkpoint(out, model, objective, processor, optimizer, stage_index, step + 1, stage, info, lora,
                        None if last else average)
    bar.close()


def _checkpoint(out: Path, model: JanusModel, objective: nn.Module, processor: JanusProcessor,
                optimizer: torch.optim.Optimizer, stage_index: int, step: int, stage: StageConfig,
                info: D.DistInfo, lora: bool, average: WeightAverage | None = None) -> None:
    state = D.full_state_dict(objective, info)
    if lora:
        state = merged_state(model.language_model, state, prefix="language_model.")
    trainer_state: dict[str, Any] = {
        "stage": stage_index, "step": step, "stage_name": stage.name,
        "optimizer": D.optimizer_state(objective, optimizer, info),
    }
    if lora:
        trainer_state["lora"] = lora_state(model.language_model)
    if average is not None:  # mid-stage: the raw weights above, their averages here
        trainer_state["ema"] = average.state_dict()
    save_checkpoint(out, model, processor, state, trainer_state, info)
    D.barrier(info)
