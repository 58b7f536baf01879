"""`januspro train vq-decoder`: fine-tune only the VQ decoder of a checkpoint on the images of a
dataset's text-to-image records.

The encoder and codebook stay frozen, so every image keeps its codes and the language model,
which was trained to draw those codes, needs no retraining: only what the codes decode to
changes. This is the cheap way to make generated images sharper on a domain (the bundled
recipe does it after training its tokenizer, `components.tune_vq_decoder`).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch

from januspro.errors import InputError
from januspro.training.components import ComponentTrainConfig, tune_vq_decoder

log = logging.getLogger(__name__)
CARD_FILE = "vq_decoder_tuning.json"


def stored_dtype(folder: Path) -> torch.dtype:
    """The dtype a checkpoint's floating-point weights are stored in (of its first such tensor)."""
    from januspro.loading import iter_tensors, weight_files

    for _, tensor in iter_tensors(weight_files(folder)):
        if tensor.is_floating_point():
            return tensor.dtype
    raise InputError(f"{folder} holds no floating-point weights")


def images_as_uint8(paths: Sequence[Path], size: int, chunk: int = 256) -> torch.Tensor:
    """[N, 3, size, size] uint8: the images, resized as the VQ tokenizer reads them (a quarter of
    the memory of floats, so that thousands of 384 px images fit)."""
    from januspro.processing.image import load_image, pil_to_pixels

    out = torch.empty(len(paths), 3, size, size, dtype=torch.uint8)
    for start in range(0, len(paths), chunk):
        pixels = pil_to_pixels([load_image(p) for p in paths[start:start + chunk]], size)  # [-1, 1]
        out[start:start + pixels.shape[0]] = ((pixels + 1.0) * 127.5).round().to(torch.uint8)
    return out


def finetune_vq_decoder(model: str | Path | None, data: Sequence[str | Path], out: Path,
                        config: ComponentTrainConfig, device: str | None = None, strict: bool = False,
                        progress: bool = True) -> Path:
    """Load `model` (None: the bundled one), tune its VQ decoder on the t2i images of `data`
    with `config`, and write the whole checkpoint to `out` (a new or empty folder) in the dtype
    its weights were stored in, with a card (`vq_decoder_tuning.json`) of what was done."""
    from januspro.bundled import bundled_model_path
    from januspro.engine import load, undo_inference_layout
    from januspro.loading import resolve_model_path
    from januspro.training.data import read_records

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not an empty folder; choose another --out")
    if config.steps < 1:
        raise InputError("--steps must be at least 1")
    folder = bundled_model_path() if model is None else resolve_model_path(model)
    paths = list(dict.fromkeys(r.images[0] for r in read_records(data, strict=strict) if r.kind == "t2i"))
    if not paths:
        raise InputError("no text-to-image records in --data: the decoder is tuned on their images")
    dtype = stored_dtype(folder)
    janus = load(folder, device=device, dtype=dtype)  # the rest of the model only passes through, as stored
    undo_inference_layout(janus.model)
    vq = janus.model.gen_vision_model.float()
    images = images_as_uint8(paths, vq.config.image_size)
    log.info("tuning the VQ decoder of %s on %d images", folder, len(paths))
    history = tune_vq_decoder(vq, images, config, progress=progress)
    window = max(1, min(20, len(history) // 5))  # mean over the first and last steps: less batch noise
    first, last = (sum(row["mse"] for row in rows) / len(rows) for rows in (history[:window], history[-window:]))
    log.info("reconstruction mse %.5f -> %.5f", first, last)

    tmp = out.parent / f".{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    janus.save(tmp, dtype=dtype)
    card = {"model": str(model) if model is not None else "bundled", "images": len(paths), "config": asdict(config),
            "mse_first_steps": first, "mse_last_steps": last, "steps_averaged": window}
    (tmp / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out
