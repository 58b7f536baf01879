"""Shapes-world training data, on disk in the training pipeline's format or in memory.

A dataset is a folder with one or more `*.jsonl` manifests and image files beside them; image
paths in records are relative to the manifest's folder. `write_dataset` writes
`folder/manifest.jsonl` and `folder/images/000000.png`, ... One JSON object per line, with
"kind" one of:

    {"kind": "text", "text": "the circle is red"}
        text-only language data: captions, generation prompts and facts about a scene as plain
        sentences ("there are two shapes", "the red circle is not above the blue square").
    {"kind": "understanding", "images": ["images/000001.png"],
     "messages": [{"role": "user", "content": "<image_placeholder>\\nWhat color is the circle?"},
                  {"role": "assistant", "content": "red"}, ...]}
        questions about one image, 1 to 3 user/assistant turns; the image comes with the first.
    {"kind": "t2i", "prompt": "a red circle", "image": "images/000002.png"}
        text-to-image: any prompt that describes the image (`language.prompts`).

Each scene image is written once and used by one t2i record and `questions_per_image`
understanding records (as many images as the larger need asks for). Question types are drawn
uniformly among those that apply to the scene, or by `question_weights`; yes/no answers are a
fair coin.

Seeds: training data uses seeds 0-999; seeds from HELD_OUT_SEED (7000) up are held out for
evaluation (ShapesEval uses 7777) and refused unless `allow_held_out=True`. The same seed and
arguments give byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image

from januspro.errors import InputError
from januspro.shapes.language import QA, QUESTION_TYPES, PromptSpec, prompts, question, question_types, questions
from januspro.shapes.world import KIND_WEIGHTS, Scene, render, sample_scene

HELD_OUT_SEED = 7000
IMAGE_TOKEN = "<image_placeholder>"
MANIFEST = "manifest.jsonl"


def check_seed(seed: int, allow_held_out: bool = False) -> None:
    """Refuse negative seeds, and the evaluation's held-out seeds unless allowed."""
    if seed < 0:
        raise InputError(f"seeds are >= 0, got {seed}")
    if seed >= HELD_OUT_SEED and not allow_held_out:
        raise InputError(
            f"seed {seed} is held out for evaluation (seeds >= {HELD_OUT_SEED}; ShapesEval uses 7777); "
            "train on seeds 0-999, or force it with allow_held_out=True"
        )


@dataclass(frozen=True)
class Sample:
    """One scene with its image, every generation prompt for it, and one QA per question type."""

    scene: Scene
    image: Image.Image
    prompts: tuple[PromptSpec, ...]
    questions: tuple[QA, ...]


def iter_samples(
    seed: int, weights: Sequence[float] = KIND_WEIGHTS, allow_held_out: bool = False, stream: int = 0
) -> Iterator[Sample]:
    """An endless, reproducible stream of samples. Stream 0 holds the scenes whose images
    `write_dataset(seed)` writes, in order; stream 1 the scenes of its text records."""
    check_seed(seed, allow_held_out)
    scenes = np.random.default_rng([seed, 0, stream])
    extras = np.random.default_rng([seed, 1, stream])
    while True:
        scene = sample_scene(scenes, weights=weights)
        yield Sample(scene, render(scene), prompts(scene), questions(scene, extras))


def _any_prompt(scene: Scene, rng: np.random.Generator) -> str:
    """A uniformly drawn generation prompt of the scene (`language.prompts`)."""
    options = prompts(scene)
    return options[int(rng.integers(len(options)))].text


def t2i_record(scene: Scene, image_path: str, rng: np.random.Generator) -> dict[str, Any]:
    """A text-to-image record with a uniformly drawn prompt of the image."""
    return {"kind": "t2i", "prompt": _any_prompt(scene, rng), "image": image_path}


def understanding_record(scene: Scene, image_path: str, rng: np.random.Generator, turns: int = 1,
                         weights: Mapping[str, float] | None = None, relation_inverse: float = 0.0) -> dict[str, Any]:
    """A conversation of `turns` fresh questions of different types about one image, the types
    drawn uniformly among those that apply, or in proportion to `weights` (without replacement);
    `relation_inverse`: `language.question`'s `inverse`."""
    types = question_types(scene)
    if weights is None:
        order = rng.permutation(len(types))[:turns]
    else:
        share = np.array([weights.get(t, 1.0) for t in types], dtype=float)
        if not share.any():  # every type that applies is weighted 0: ask them uniformly
            share[:] = 1.0
        turns = min(turns, int(np.count_nonzero(share)))
        order = rng.choice(len(types), size=turns, replace=False, p=share / share.sum())
    messages: list[dict[str, str]] = []
    for turn, index in enumerate(order):
        qa = question(scene, types[int(index)], rng, inverse=relation_inverse)
        assert qa is not None
        content = f"{IMAGE_TOKEN}\n{qa.question}" if turn == 0 else qa.question
        messages += [{"role": "user", "content": content}, {"role": "assistant", "content": qa.answer}]
    return {"kind": "understanding", "images": [image_path], "messages": messages}


def text_record(scene: Scene, rng: np.random.Generator, paragraph: bool = False, chat: bool = False) -> dict[str, Any]:
    """A sentence about a scene: a generation prompt (1 in 3) or a fact as a plain sentence.

    `paragraph`: a generation prompt of the scene followed by two or three facts about it
    (`a red circle to the left of a blue square. the square is blue. there is no red square.
    the blue square is to the right of the red circle`). The facts follow from the prompt only
    when it is read with its binding (which colour goes with which shape, which way the relation
    points), so the language model learns to build that reading, which generation then needs.

    `chat` (with `paragraph`): the same prompt and facts as an image-free conversation, the prompt
    the user's turn and the facts the assistant's answer. With the bundled model's empty system
    prompt its tokens up to `<|Assistant|>:` are exactly those of the generation prompt, so the
    binding is learned on the very hidden states that image generation then reads (a plain
    paragraph starts `[BOS] a red ...`, a generation prompt `[BOS] <|User|>: a red ...`)."""
    if chat and not paragraph:
        raise InputError("chat=True writes a paragraph as a conversation; pass paragraph=True too")
    if paragraph:
        prompt = _any_prompt(scene, rng)
        types = [t for t in question_types(scene) if t != "describe"]  # describe: the caption again
        sentences = [prompt]
        for index in rng.permutation(len(types))[: int(rng.integers(2, 4))]:
            qa = question(scene, types[int(index)], rng)
            assert qa is not None  # question_types lists only the types that apply
            sentences.append(qa.statement)
        if chat:
            return {"kind": "understanding", "images": [],
                    "messages": [{"role": "user", "content": prompt},
                                 {"role": "assistant", "content": ". ".join(sentences[1:])}]}
        return {"kind": "text", "text": ". ".join(sentences)}
    if rng.integers(3) == 0:
        return {"kind": "text", "text": _any_prompt(scene, rng)}
    types = question_types(scene)
    qa = question(scene, types[int(rng.integers(len(types)))], rng)
    assert qa is not None
    return {"kind": "text", "text": qa.statement}


def write_dataset(
    folder: str | Path,
    seed: int,
    n_t2i: int,
    n_understanding: int,
    n_text: int,
    *,
    questions_per_image: int = 2,
    multi_turn: float = 0.25,
    text_paragraphs: float = 0.0,
    paragraph_chats: float = 0.0,
    question_weights: Mapping[str, float] | None = None,
    relation_inverse: float = 0.0,
    weights: Sequence[float] = KIND_WEIGHTS,
    allow_held_out: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write `folder/manifest.jsonl` and its images; returns the manifest's path.

    n_t2i / n_understanding / n_text: records of each kind; questions_per_image: understanding
    records per scene image; multi_turn: fraction of understanding records with 2-3 turns;
    text_paragraphs: fraction of text records that are a prompt and facts (`text_record`);
    paragraph_chats: fraction of those paragraphs written as an image-free conversation (prompt
    asked, facts answered; `text_record(chat=True)`), an understanding record in the manifest;
    question_weights: relative frequency of each question type in understanding records (types
    left out weigh 1; a scene whose applicable types all weigh 0 is asked them uniformly; None:
    uniform, the data stream of datasets written before the option);
    relation_inverse: share of `no` relation questions that name the inverse relation
    (`language.question`; 0: the data stream of datasets written before the option);
    weights: scene kinds single, pair, count. Refuses a folder that already has a manifest
    unless `overwrite` (which first removes the manifest and images/*.png)."""
    check_seed(seed, allow_held_out)
    for name, value in (("n_t2i", n_t2i), ("n_understanding", n_understanding), ("n_text", n_text)):
        if value < 0:
            raise InputError(f"{name} must be >= 0, got {value}")
    if questions_per_image < 1:
        raise InputError(f"questions_per_image must be >= 1, got {questions_per_image}")
    if not 0 <= multi_turn <= 1:
        raise InputError(f"multi_turn must be in [0, 1], got {multi_turn}")
    if not 0 <= text_paragraphs <= 1:
        raise InputError(f"text_paragraphs must be in [0, 1], got {text_paragraphs}")
    if not 0 <= paragraph_chats <= 1:
        raise InputError(f"paragraph_chats must be in [0, 1], got {paragraph_chats}")
    if not 0 <= relation_inverse <= 1:
        raise InputError(f"relation_inverse must be in [0, 1], got {relation_inverse}")
    if question_weights is not None:
        unknown = sorted(set(question_weights) - set(QUESTION_TYPES))
        if unknown:
            raise InputError(f"unknown question types {unknown} in question_weights (choose from "
                             f"{', '.join(QUESTION_TYPES)})")
        if any(not w >= 0 for w in question_weights.values()) or not any(question_weights.get(t, 1.0) > 0
                                                                           for t in QUESTION_TYPES):
            raise InputError(f"question_weights must be >= 0 and not all 0, got {dict(question_weights)}")
    folder = Path(folder)
    manifest = folder / MANIFEST
    images_dir = folder / "images"
    if manifest.exists():
        if not overwrite:
            raise InputError(f"{manifest} exists; pass overwrite=True to replace the dataset")
        manifest.unlink()
        for old in images_dir.glob("*.png"):
            old.unlink()
    images_dir.mkdir(parents=True, exist_ok=True)

    n_images = max(n_t2i, -(-n_understanding // questions_per_image))
    scenes = np.random.default_rng([seed, 0, 0])  # the scenes of iter_samples(seed), in order
    pick = np.random.default_rng([seed, 2])
    records: list[dict[str, Any]] = []
    written_und = 0
    for index in range(n_images):
        scene = sample_scene(scenes, weights=weights)
        path = f"images/{index:06d}.png"
        render(scene).save(folder / path, format="PNG")
        if index < n_t2i:
            records.append(t2i_record(scene, path, pick))
        for _ in range(min(questions_per_image, n_understanding - written_und)):
            turns = 1 if pick.random() >= multi_turn else int(pick.integers(2, 4))
            records.append(understanding_record(scene, path, pick, turns, question_weights, relation_inverse))
            written_und += 1
    text_scenes = np.random.default_rng([seed, 0, 1])  # the scenes of iter_samples(seed, stream=1)
    for _ in range(n_text):
        scene = sample_scene(text_scenes, weights=weights)
        # No draw at share 0, so datasets without paragraphs stay what they were before the option.
        paragraph = text_paragraphs > 0 and pick.random() < text_paragraphs
        chat = paragraph and paragraph_chats > 0 and pick.random() < paragraph_chats  # likewise
        records.append(text_record(scene, pick, paragraph, chat))

    tmp = manifest.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(manifest)  # the manifest appears only once every image is written
    return manifest


def read_records(folder: str | Path) -> Iterator[dict[str, Any]]:
    """Every record of every `*.jsonl` manifest in `folder`, with image paths made absolute."""
    folder = Path(folder)
    for manifest in sorted(folder.glob("*.jsonl")):
        with manifest.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                record = json.loads(line)
                if "image" in record:
                    record["image"] = str(folder / record["image"])
                if "images" in record:
                    record["images"] = [str(folder / p) for p in record["images"]]
                yield record
