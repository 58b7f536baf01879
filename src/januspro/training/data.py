"""Training data: JSONL manifests -> validated records -> token sequences -> padded batches.

A dataset is a folder (or a single `.jsonl` file) whose manifests hold one JSON object per line:

    {"kind": "text", "text": "a red circle to the left of a blue square"}
    {"kind": "understanding", "images": ["images/1.png"],
     "messages": [{"role": "user", "content": "<image_placeholder>\\nWhat color is the circle?"},
                  {"role": "assistant", "content": "red"}]}
    {"kind": "t2i", "prompt": "a red circle", "image": "images/2.png"}

Image paths are relative to the manifest. A bad record (malformed JSON, unknown kind, missing
field, missing image file, roles out of order) is reported with its file and line; by default it
is skipped with a warning, with `strict=True` the run fails on the first one.

Sequences are laid out exactly as inference lays out prompts (the processor renders them), so
what the model learns is what it is asked at inference:
- understanding: `[BOS] <system> <|User|>: <image...>\\nQ\\n\\n<|Assistant|>:` then ` answer<eos>`,
  later turns continue as `ChatSession` does; only answer tokens carry labels when masking;
- t2i: the generation prompt (`... <|Assistant|>:<begin_of_image>`) then the image's VQ codes,
  each code predicted by the generation head from the previous position;
- text: `[BOS] text <eos>`, every token learned.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from januspro.errors import InputError
from januspro.generation.image import unconditional_ids
from januspro.processing.chat_format import Message
from januspro.processing.processor import JanusProcessor
from januspro.processing.tokenizer import IMAGE

log = logging.getLogger(__name__)

KINDS = ("text", "understanding", "t2i")
IGNORE = -100


class DataError(InputError):
    """A dataset record that cannot be used (file and line in the message)."""


@dataclass(frozen=True)
class Record:
    kind: str
    text: str = ""  # text records
    messages: tuple[tuple[str, str], ...] = ()  # understanding: (role, content) pairs
    images: tuple[Path, ...] = ()  # understanding images, or the single t2i image
    prompt: str = ""  # t2i
    source: str = ""  # "file:line" for error messages


def _parse(obj: Any, base: Path, where: str) -> Record:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: a record must be a JSON object")
    kind = obj.get("kind")
    if kind not in KINDS:
        raise DataError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "text":
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: text record needs a non-empty 'text'")
        return Record("text", text=text, source=where)
    if kind == "t2i":
        prompt, image = obj.get("prompt"), obj.get("image")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{where}: t2i record needs a non-empty 'prompt'")
        if not isinstance(image, str):
            raise DataError(f"{where}: t2i record needs an 'image' path")
        path = base / image
        if not path.is_file():
            raise DataError(f"{where}: image {image!r} not found")
        return Record("t2i", prompt=prompt, images=(path,), source=where)
    messages, images = obj.get("messages"), obj.get("images", [])
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: understanding record needs a non-empty 'messages' list")
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise DataError(f"{where}: 'images' must be a list of paths")
    pairs = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise DataError(f"{where}: message {index} needs a string 'content'")
        role = str(message.get("role", "")).lower()
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            raise DataError(f"{where}: message {index} must be from the {expected}, got {message.get('role')!r}")
        pairs.append((role, message["content"]))
    if pairs[-1][0] != "assistant":
        raise DataError(f"{where}: the conversation must end with an assistant message")
    placeholders = sum(content.count(IMAGE) for role, content in pairs if role == "user")
    if placeholders != len(images):
        raise DataError(f"{where}: {placeholders} image placeholders but {len(images)} images")
    paths = []
    for image in images:
        path = base / image
        if not path.is_file():
            raise DataError(f"{where}: image {image!r} not found")
        paths.append(path)
    return Record("understanding", messages=tuple(pairs), images=tuple(paths), source=where)


def manifest_files(source: str | Path) -> list[Path]:
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if files:
            return files
        raise DataError(f"{path}: no *.jsonl manifest in this folder")
    raise DataError(f"dataset {str(path)!r} does not exist")


def read_records(sources: Sequence[str | Path], strict: bool = False) -> list[Record]:
    """All valid records of the given datasets. Bad records are skipped with a warning that
    names file and line, or raise DataError when `strict`."""
    records: list[Record] = []
    skipped = 0
    for source in sources:
        for file in manifest_files(source):
            with file.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    where = f"{file}:{number}"
                    try:
                        try:
                            obj = json.loads(line)
                        except json.JSONDecodeError as exc:
                            raise DataError(f"{where}: malformed JSON ({exc.msg})") from None
                        records.append(_parse(obj, file.parent, where))
                    except DataError as exc:
                        if strict:
                            raise
                        skipped += 1
                        if skipped <= 20:
                            log.warning("skipping bad record: %s", exc)
    if skipped:
        log.warning("skipped %d bad records in total", skipped)
    if not records:
        raise DataError("the datasets hold no usable records")
    return records


# ------------------------------------------------------------------------- encoding


@dataclass
class Sequence_:
    """One encoded training sequence (lists, collated later)."""

    ids: list[int]  # token ids; image-code positions hold the pad id
    text_labels: list[int]  # next-token target for the text head at each position, or IGNORE
    image_labels: list[int]  # next-code target for the generation head at each position, or IGNORE
    code_inputs: list[int] = field(default_factory=list)  # VQ codes fed as inputs, in order
    code_positions: list[int] = field(default_factory=list)  # where they go
    images: list[Path] = field(default_factory=list)  # understanding images, in order


class SequenceEncoder:
    """Turns records into sequences with the processor's exact prompt layout."""

    def __init__(self, processor: JanusProcessor, system: str | None = None, mask_prompt: bool = True,
                 max_length: int | None = None) -> None:
        self.processor = processor
        self.system = system
        self.mask_prompt = mask_prompt
        self.max_length = max_length or processor.max_length
        self.special = processor.tokenizer.special

    def text(self, record: Record) -> Sequence_:
        ids = self.processor.tokenizer.encode(record.text.strip(), add_bos=True) + [self.special.eos]
        labels = ids[1:] + [IGNORE]
        return self._checked(Sequence_(ids, labels, [IGNORE] * len(ids)), record)

    def understanding(self, record: Record) -> Sequence_:
        processor = self.processor
        ids: list[int] = []
        learn: list[bool] = []
        images = list(record.images)
        image_iter = iter(images)
        for index in range(0, len(record.messages), 2):
            question, answer = record.messages[index][1], record.messages[index + 1][1]
            n_images = question.count(IMAGE)
            message = Message("user", question, tuple(next(image_iter) for _ in range(n_images)))
            if index == 0:
                prompt = processor.conversation([message], self.system).ids
            else:
                prompt = processor.continuation(message).ids
            answer_ids = processor.answer_ids(answer)
            ids += prompt + answer_ids
            learn += [not self.mask_prompt] * len(prompt) + [True] * len(answer_ids)
        # Position t predicts token t+1; a token is a target when it is learned (image
        # placeholders never are: their inputs are replaced by image features).
        labels = [ids[t + 1] if learn[t + 1] and ids[t + 1] != self.special.image else IGNORE
                  for t in range(len(ids) - 1)] + [IGNORE]
        return self._checked(Sequence_(ids, labels, [IGNORE] * len(ids), images=images), record)

    def t2i(self, record: Record, codes: Sequence[int], unconditional: bool) -> Sequence_:
        prompt = self.processor.generation_prompt(record.prompt)
        if unconditional:
            prompt = unconditional_ids(prompt, self.special.pad)
        n = len(codes)
        start = len(prompt)
        ids = prompt + [self.special.pad] * n
        image_labels = [IGNORE] * (start - 1) + list(codes) + [IGNORE]
        seq = Sequence_(ids, [IGNORE] * len(ids), image_labels, code_inputs=list(codes),
                        code_positions=list(range(start, start + n)))
        return self._checked(seq, record)

    def _checked(self, seq: Sequence_, record: Record) -> Sequence_:
        if len(seq.ids) > self.max_length:
            raise DataError(f"{record.source}: {len(seq.ids)} tokens, longer than max_length {self.max_length}")
        return seq


@dataclass
class Batch:
    """Right-padded batch (causal attention never looks right, so no mask is needed)."""

    ids: torch.Tensor  # [B, T]
    text_labels: torch.Tensor  # [B, T]
    image_labels: torch.Tensor  # [B, T]
    image_mask: torch.Tensor  # [B, T] bool: understanding image features go here
    pixels: torch.Tensor  # [M, 3, S, S]
    code_mask: torch.Tensor  # [B, T] bool: VQ code embeddings go here
    code_inputs: torch.Tensor  # [K] codes, row-major order of code_mask

    def to(self, device: torch.device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) for t in (self.ids, self.text_labels, self.image_labels,
                                                                  self.image_mask, self.pixels, self.code_mask,
                                                                  self.code_inputs)))

    @property
    def text_tokens(self) -> int:
        return int((self.text_labels != IGNORE).sum())

    @property
    def image_tokens(self) -> int:
        return int((self.image_labels != IGNORE).sum())


def collate(seqs: Iterable[Sequence_], pad_id: int, image_id: int, pixels_of) -> Batch:  # noqa: ANN001
    """Pad sequences on the right and gather images. `pixels_of(paths)` -> [M, 3, S, S]."""
    seqs = list(seqs)
    length = max(len(s.ids) for s in seqs)
    batch = len(seqs)
    ids = torch.full((batch, length), pad_id, dtype=torch.long)
    text_labels = torch.full((batch, length), IGNORE, dtype=torch.long)
    image_labels = torch.full((batch, length), IGNORE, dtype=torch.long)
    code_mask = torch.zeros(batch, length, dtype=torch.bool)
    codes: list[int] = []
    paths: list[Path] = []
    for row, seq in enumerate(seqs):
        n = len(seq.ids)
        ids[row, :n] = torch.tensor(seq.ids)
        text_labels[row, :n] = torch.tensor(seq.text_labels)
        image_labels[row, :n] = torch.tensor(seq.image_labels)
        if seq.code_positions:
            code_mask[row, seq.code_positions] = True
            codes += seq.code_inputs
        paths += seq.images
    image_mask = ids == image_id
    return Batch(ids, text_labels, image_labels, image_mask, pixels_of(paths), code_mask,
                 torch.tensor(codes, dtype=torch.long))


class MixedSampler:
    """Stateless batch composition: the samples of global step `s` depend only on (seed, s),
    so training resumes exactly and every rank agrees on the global batch.

    `weights` gives the share of each kind (e.g. understanding 5 : text 1 : t2i 4)."""

    def __init__(self, counts: dict[str, int], weights: dict[str, float], seed: int, uncond_prob: float = 0.0) -> None:
        self.kinds = [k for k in KINDS if counts.get(k, 0) > 0 and weights.get(k, 0) > 0]
        if not self.kinds:
            raise DataError(f"no data for the stage's mix {weights} (have {counts})")
        total = sum(weights[k] for k in self.kinds)
        self.probs = np.array([weights[k] / total for k in self.kinds])
        self.counts = counts
        self.seed = seed
        self.uncond_prob = uncond_prob

    def batch(self, step: int, size: int) -> list[tuple[str, int, bool]]:
        """[(kind, record index, unconditional?)] for global step `step`; `unconditional`
        (t2i only) replaces the caption by the pad-only prompt, so that guidance works."""
        rng = np.random.default_rng([self.seed, step])
        kinds = rng.choice(len(self.kinds), size=size, p=self.probs)
        out = []
        for k in kinds:
            kind = self.kinds[int(k)]
            index = int(rng.integers(self.counts[kind]))
            coin = float(rng.random())
            out.append((kind, index, kind == "t2i" and coin < self.uncond_prob))
        return out
