"""ShapesEval's judge: exact on ground-truth renders, and it rejects wrong images."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from januspro.shapes.evaluate import eval_prompts
from januspro.shapes.judge import CATEGORIES, classify_shape, detect, judge, judge_array, scene_from_image
from januspro.shapes.language import ObjSpec, count_prompt, pair_prompt, parse_prompt, scene_for_prompt, single_prompt
from januspro.shapes.world import PALETTE, Obj, Scene, render, render_array, sample_scene


def test_detect_recovers_every_object_of_a_render() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        scene = sample_scene(rng)
        found = detect(render(scene))
        assert len(found) == len(scene.objects)
        for d in found:
            o = next(o for o in scene.objects if o.box == d.box)
            assert (d.color, d.shape, d.size, d.center, d.position) == (o.color, o.shape, o.size, o.center, o.position)
        assert set(scene_from_image(render_array(scene)).objects) == set(scene.objects)


@pytest.mark.parametrize("category", CATEGORIES)
def test_judge_scores_ground_truth_perfectly(category: str) -> None:
    rng = np.random.default_rng(CATEGORIES.index(category))
    specs = eval_prompts(category, 80, seed=11)
    assert all(s.category == category for s in specs)
    for spec in specs:
        image = render(scene_for_prompt(spec, rng))
        verdict = judge(spec, image)
        assert verdict.correct, (spec, verdict)
        assert verdict.reason == "ok"


def _blank() -> np.ndarray:
    return np.full((64, 64, 3), 255, dtype=np.uint8)


def test_judge_rejects_wrong_images() -> None:
    rng = np.random.default_rng(1)
    red_circle = single_prompt(ObjSpec("red", "circle"))
    assert judge(red_circle, render(Scene((Obj("red", "circle", "large", 20, 20),)))).correct
    assert not judge(red_circle, render(Scene((Obj("orange", "circle", "large", 20, 20),)))).correct  # colour
    assert not judge(red_circle, render(Scene((Obj("red", "square", "large", 20, 20),)))).correct  # shape
    assert not judge(red_circle, render(Scene((Obj("red", "triangle", "large", 20, 20),)))).correct
    assert not judge(red_circle, _blank()).correct  # nothing
    two = Scene((Obj("red", "circle", "small", 5, 30), Obj("blue", "square", "small", 40, 28)))
    assert not judge(red_circle, render(two)).correct  # one object too many

    sized = single_prompt(ObjSpec("red", "circle", "small", "top left"))
    assert judge(sized, render(Scene((Obj("red", "circle", "small", 5, 5),)))).correct
    assert not judge(sized, render(Scene((Obj("red", "circle", "large", 5, 5),)))).correct  # size
    assert not judge(sized, render(Scene((Obj("red", "circle", "small", 40, 5),)))).correct  # position

    colors = replace(single_prompt(ObjSpec("green", "square")), category="colors")
    assert judge(colors, render(Scene((Obj("green", "triangle", "small", 30, 30),)))).correct  # colour only
    assert not judge(colors, render(Scene((Obj("blue", "square", "small", 30, 30),)))).correct

    counting = count_prompt(3, "blue", "triangle")
    three = scene_for_prompt(counting, rng)
    assert judge(counting, render(three)).correct
    assert not judge(counting, render(Scene(three.objects[:2]))).correct  # two, not three
    array = render_array(three)
    o = three.objects[0]
    region = array[o.y:o.y + o.side, o.x:o.x + o.side]
    region[(region == PALETTE["blue"]).all(-1)] = PALETTE["purple"]
    assert not judge(counting, array).correct  # one of the three has the wrong colour

    position = replace(pair_prompt(("red", "circle"), "to the left of", ("blue", "square")), category="position")
    left = Scene((Obj("red", "circle", "small", 5, 30), Obj("blue", "square", "small", 40, 28)))
    swapped = Scene((Obj("red", "circle", "small", 40, 30), Obj("blue", "square", "small", 5, 28)))
    assert judge(position, render(left)).correct
    assert not judge(position, render(swapped)).correct  # swapped relation
    assert not judge(position, render(Scene(left.objects[:1]))).correct  # missing object
    for category in ("two_objects", "color_attribution"):
        spec = replace(position, category=category)
        assert judge(spec, render(swapped)).correct  # no relation asked
        assert not judge(spec, render(Scene(left.objects[1:]))).correct  # missing object
        wrong = Scene((Obj("blue", "circle", "small", 5, 30), Obj("red", "square", "small", 40, 28)))
        assert not judge(spec, render(wrong)).correct  # colours attributed to the wrong shapes


def test_judge_thresholds() -> None:
    assert [classify_shape(f) for f in (1.0, 0.89, 0.88, 0.7, 0.62, 0.61, 0.4)] == \
        ["square", "square", "circle", "circle", "circle", "triangle", "triangle"]
    array = render_array(Scene((Obj("red", "square", "small", 20, 20),)))
    array[50:54, 50:54] = (0, 0, 0)  # 16 px speck: under 20 px, ignored
    array[0:10, 0:10] = (225, 225, 225)  # within 60 of white: background
    assert [d.name for d in detect(array)] == ["red square"]
    array[50:55, 50:55] = (0, 0, 0)  # 25 px: an object
    assert len(detect(array)) == 2
    # Colour: nearest palette colour to the mean, so slightly off colours still count.
    noisy = render_array(Scene((Obj("yellow", "circle", "large", 20, 20),))).astype(int)
    noisy[noisy[..., 2] == 8] += np.array([-15, 10, 20])
    assert [d.name for d in detect(noisy.clip(0, 255).astype(np.uint8))] == ["yellow circle"]
    # 4-connectivity: two squares touching only at a corner are two objects.
    corner = _blank()
    corner[10:20, 10:20] = PALETTE["red"]
    corner[20:30, 20:30] = PALETTE["red"]
    assert len(detect(corner)) == 2
    # Size threshold: 16 px is small, 17 px large.
    box = _blank()
    box[10:26, 10:26] = PALETTE["green"]
    box[40:57, 40:57] = PALETTE["green"]
    assert [d.size for d in detect(box)] == ["small", "large"]


def test_other_image_sizes_are_resized_to_64() -> None:
    scene = Scene((Obj("purple", "triangle", "large", 30, 8), Obj("green", "circle", "small", 34, 40)))
    big = render(scene).resize((128, 128), Image.NEAREST)  # shrunk back with BOX: exact
    assert set(scene_from_image(big).objects) == set(scene.objects)
    small = np.full((32, 32, 3), 255, dtype=np.uint8)
    small[5:16, 5:16] = PALETTE["blue"]  # 11 px at 32 -> 22 px at 64 (NEAREST: solid blocks)
    assert judge_array(Image.fromarray(small)).shape == (64, 64, 3)
    (found,) = detect(Image.fromarray(small))
    assert (found.name, found.size, found.box, found.position) == ("blue square", "large", (10, 10, 31, 31), "top left")
    assert judge(parse_prompt("a large blue square in the top left"), Image.fromarray(small)).correct


def test_unknown_category_is_an_error() -> None:
    with pytest.raises(ValueError, match="category"):
        judge(replace(single_prompt(ObjSpec("red", "circle")), category="nope"), _blank())
