"""The records of a run in memory, with what is costly to recompute cached per record:
preprocessed understanding pixels and the VQ codes of text-to-image targets (the VQ tokenizer
is frozen in every stage, so a t2i image is encoded once, on first use)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from januspro.models.janus import JanusModel
from januspro.processing.image import load_image, pil_to_pixels
from januspro.processing.processor import JanusProcessor
from januspro.training.data import Batch, Record, SequenceEncoder, Sequence_, collate


class DataPool:
    def __init__(self, records: Sequence[Record], processor: JanusProcessor, model: JanusModel) -> None:
        self.by_kind: dict[str, list[Record]] = {"text": [], "understanding": [], "t2i": []}
        for record in records:
            self.by_kind[record.kind].append(record)
        self.processor = processor
        # A private copy of the frozen VQ tokenizer: the model's own may be sharded (FSDP).
        self.vq = copy.deepcopy(model.gen_vision_model).eval().requires_grad_(False)
        self.image_size = model.config.gen_vision.image_size
        self._pixels: dict[Path, torch.Tensor] = {}
        self._codes: dict[int, list[int]] = {}

    def counts(self) -> dict[str, int]:
        return {kind: len(items) for kind, items in self.by_kind.items()}

    def pixels(self, paths: Sequence[Path]) -> torch.Tensor:
        """[M, 3, S, S] understanding-encoder inputs of `paths` (cached as float16)."""
        size = self.processor.image_processor.image_size
        if not paths:
            return torch.zeros(0, 3, size, size)
        out = []
        for path in paths:
            cached = self._pixels.get(path)
            if cached is None:
                array = self.processor.image_processor.to_array(load_image(path))
                cached = torch.from_numpy(array).to(torch.float16)
                self._pixels[path] = cached
            out.append(cached.float())
        return torch.stack(out)

    @torch.no_grad()
    def codes(self, indices: Sequence[int]) -> list[list[int]]:
        """VQ codes of t2i records (by index), encoding the uncached ones in one batch."""
        missing = [i for i in dict.fromkeys(indices) if i not in self._codes]
        if missing:
            weight = self.vq.quant_conv.weight
            images = [load_image(self.by_kind["t2i"][i].images[0]) for i in missing]
            pixels = pil_to_pixels(images, self.image_size).to(weight.device, weight.dtype)
            self._codes.update(zip(missing, self.vq.encode(pixels).codes.tolist()))
        return [self._codes[i] for i in indices]

    def batch(self, picks: Sequence[tuple[str, int, bool]], encoder: SequenceEncoder) -> Batch:
        """Encode and collate the picked (kind, index, unconditional) samples."""
        t2i = [index for kind, index, _ in picks if kind == "t2i"]
        codes = dict(zip(t2i, self.codes(t2i))) if t2i else {}
        seqs: list[Sequence_] = []
        for kind, index, uncond in picks:
            record = self.by_kind[kind][index]
            if kind == "text":
                seqs.append(encoder.text(record))
            elif kind == "understanding":
                seqs.append(encoder.understanding(record))
            else:
                seqs.append(encoder.t2i(record, codes[index], uncond))
        special = self.processor.tokenizer.special
        return collate(seqs, special.pad, special.image, self.pixels)


def images_of(pool: DataPool, kind: str) -> list[Image.Image]:
    """All images of one kind (for the component trainers)."""
    return [load_image(path) for record in pool.by_kind[kind] for path in record.images]
