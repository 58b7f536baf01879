"""The binding probe of the answers: does the model know which object has which colour, shape and place?

ShapesEval's question types mix scenes where one attribute gives the answer away (the colour of the only
object) with scenes where it takes binding, so a model that reads which colours, shapes and layout a scene
holds, but not which object each belongs to, still scores well on them. This probe asks only the questions that
take binding, about held-out pair scenes, and sorts each answer:

- `What color is the {shape}?` answered with that object's colour, or with the other object's (a model that
  does not bind answers each about half the time); the same for `What shape is the {color} object?`;
- `Is the A {relation} the B?` for all four relations: the one that holds (yes), its inverse (no: takes
  knowing which object is where) and the two of the other axis (no: the layout alone tells).

(The model shipped 2026-12-07, 200 scenes of seed 7777: shape by colour 0.982 right, colour by shape 0.504 right
and 0.496 the other object's; relations: held 0.890, inverse 0.115, other axis 0.845: it finds an object by its
colour but not by its shape, and knows how a pair is laid out but not which object is on which side.)
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from januspro.shapes.evaluate import EVAL_SEED, Progress
from januspro.shapes.language import normalize_answer
from januspro.shapes.world import INVERSE, RELATIONS, Scene, relations_between, render, sample_scene

if TYPE_CHECKING:
    from januspro.engine import Janus

PROBE_STREAM = 91  # the probe's scenes: np.random.default_rng([seed, PROBE_STREAM]), apart from the eval's


@dataclass(frozen=True)
class ProbeQuestion:
    scene: Scene
    question: str
    kind: str  # color, shape, held, inverse, other_axis
    right: str  # the answer that is right
    other: str = ""  # color / shape: the other object's attribute (the answer of a model that does not bind)


@dataclass(frozen=True)
class BindingProbe:
    scenes: int
    color_of_shape: float  # `What color is the {shape}?`: share answered with that object's colour
    color_of_other: float  # ... with the other object's colour
    shape_of_color: float  # `What shape is the {color} object?`: share answered with that object's shape
    shape_of_other: float  # ... with the other object's shape
    relation_held: float  # `yes` to the relation that holds
    relation_inverse: float  # `no` to its inverse
    relation_other_axis: float  # `no` to the relations of the other axis


def probe_questions(n_scenes: int, seed: int = EVAL_SEED) -> tuple[ProbeQuestion, ...]:
    """The probe's questions about `n_scenes` pair scenes of `seed`'s probe stream: where the two objects differ
    in both colour and shape, the colour of each by its shape and the shape of each by its colour; in every
    scene, the four relations from one object (a coin picks which) to the other."""
    rng = np.random.default_rng([seed, PROBE_STREAM])
    items: list[ProbeQuestion] = []
    for _ in range(n_scenes):
        scene = sample_scene(rng, "pair")
        a, b = scene.objects
        if a.color != b.color and a.shape != b.shape:  # (else one attribute names both objects, or both answers)
            for obj, other in ((a, b), (b, a)):
                items.append(ProbeQuestion(scene, f"What color is the {obj.shape}?", "color", obj.color, other.color))
                items.append(ProbeQuestion(scene, f"What shape is the {obj.color} object?", "shape", obj.shape,
                                           other.shape))
        first, second = (a, b) if rng.integers(2) else (b, a)
        held = relations_between(first.center, second.center)[0]
        for relation in RELATIONS:
            kind = "held" if relation == held else "inverse" if relation == INVERSE[held] else "other_axis"
            items.append(ProbeQuestion(scene, f"Is the {first.name} {relation} the {second.name}?", kind,
                                       "yes" if kind == "held" else "no"))
    return tuple(items)


def score_binding(items: Sequence[ProbeQuestion], answers: Sequence[str], scenes: int) -> BindingProbe:
    """Sort `answers` (one per item, as the model wrote them) into the probe's shares."""
    if len(items) != len(answers):
        raise ValueError(f"{len(answers)} answers for {len(items)} questions")

    def share(kind: str, target: Callable[[ProbeQuestion], str]) -> float:
        pairs = [(item, normalize_answer(answer)) for item, answer in zip(items, answers) if item.kind == kind]
        return sum(answer == normalize_answer(target(item)) for item, answer in pairs) / len(pairs) if pairs else float("nan")

    right, other = attrgetter("right"), attrgetter("other")
    return BindingProbe(scenes, share("color", right), share("color", other), share("shape", right),
                        share("shape", other), share("held", right), share("inverse", right),
                        share("other_axis", right))


def probe_binding(janus: Janus, n_scenes: int = 200, seed: int = EVAL_SEED, batch_size: int = 32,
                  progress: Progress | None = None) -> BindingProbe:
    """Ask the probe's questions greedily, one image and question per conversation, as ShapesEval does."""
    from januspro.engine import ChatOptions
    from januspro.processing.chat_format import Message

    items = probe_questions(n_scenes, seed)
    images = {id(item.scene): render(item.scene) for item in items}
    chat = ChatOptions(max_new_tokens=8, temperature=0.0)
    answers: list[str] = []
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        conversations = [[Message("user", item.question, (images[id(item.scene)],))] for item in batch]
        answers += [result.text for result in janus.chat_batch(conversations, chat)]
        if progress:
            progress("binding probe", len(answers), len(items))
    return score_binding(items, answers, n_scenes)
