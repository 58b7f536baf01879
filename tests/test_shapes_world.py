"""The shapes world follows shared/shapes-world.md: rendering, sampling, captions, prompts, QA,
and the dataset writer's format."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from januspro.errors import InputError
from januspro.shapes import language, world
from januspro.shapes.dataset import HELD_OUT_SEED, iter_samples, read_records, text_record, write_dataset
from januspro.shapes.judge import judge, scene_from_image
from januspro.shapes.language import (
    answer, normalize_answer, parse_prompt, prompts, question, question_types, questions,
)
from januspro.shapes.world import (
    COLORS, PALETTE, POSITIONS, RELATIONS, SHAPES, Obj, Scene, render, render_array, sample_count, sample_pair,
    sample_scene, sample_single,
)

COLOR_RE = "|".join(COLORS)
SHAPE_RE = "|".join(SHAPES)
CAPTION_RES = {
    "single": re.compile(rf"a (small|large) ({COLOR_RE}) ({SHAPE_RE}) in the ({'|'.join(POSITIONS)})"),
    "pair": re.compile(rf"a ({COLOR_RE}) ({SHAPE_RE}) ({'|'.join(RELATIONS)}) a ({COLOR_RE}) ({SHAPE_RE})"),
    "count": re.compile(rf"(two|three) ({COLOR_RE}) ({SHAPE_RE})s"),
}


def scenes(n: int = 300, seed: int = 0) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng) for _ in range(n)]


def test_palette_shapes_sizes_and_grid_are_the_contracts() -> None:
    assert list(PALETTE.items()) == [
        ("red", (220, 38, 38)), ("green", (22, 163, 74)), ("blue", (37, 99, 235)),
        ("yellow", (234, 179, 8)), ("purple", (147, 51, 234)), ("orange", (249, 115, 22)),
    ]
    assert SHAPES == ("circle", "square", "triangle")
    assert world.SIZES == {"small": 12, "large": 22}
    assert [world.cell_index(c) for c in (0, 21, 21.5, 22, 42, 42.5, 43, 63)] == [0, 0, 0, 1, 1, 1, 2, 2]
    assert world.position_name((10, 10)) == "top left" and world.position_name((32, 50)) == "bottom"
    assert world.position_name((32, 32)) == "center" and world.position_name((50, 30)) == "right"


def test_rendering_is_exact() -> None:
    for scene in scenes(300):
        array = render_array(scene)
        assert array.shape == (64, 64, 3) and array.dtype == np.uint8
        claimed = np.zeros((64, 64), dtype=bool)
        for o in scene.objects:
            x0, y0, x1, y1 = o.box
            assert x1 - x0 + 1 == o.side == {"small": 12, "large": 22}[o.size]
            assert min(x0, y0) >= 3 and max(x1, y1) <= 60  # 3 px from the border
            painted = (array == PALETTE[o.color]).all(axis=-1)
            box = np.zeros_like(painted)
            box[y0:y1 + 1, x0:x1 + 1] = True
            mine = painted & box
            ys, xs = np.nonzero(mine)
            assert (xs.min(), ys.min(), xs.max(), ys.max()) == o.box  # the shape fills its bounding box
            assert not (claimed & mine).any()
            claimed |= mine
        # Every other pixel is white: solid fills, no anti-aliasing.
        assert (array[~claimed] == 255).all()
        for i, a in enumerate(scene.objects):
            for b in scene.objects[i + 1:]:  # at least 3 empty columns or rows between boxes
                assert world.separated(a, b, 3)
        assert render(scene).size == (64, 64) and render(scene).mode == "RGB"


def test_shapes_fill_ratios_and_triangle_points_up() -> None:
    for side in (12, 22):
        square, circle, triangle = (world.shape_mask(s, side) for s in ("square", "circle", "triangle"))
        assert square.all()
        assert 0.62 <= circle.mean() <= 0.88 and (circle == circle.T).all() and (circle == circle[::-1]).all()
        assert triangle.mean() < 0.62
        widths = triangle.sum(axis=1)
        assert widths[0] == 2 and widths[-1] == side and (np.diff(widths) >= 0).all()  # apex up, base down
        assert (triangle == triangle[:, ::-1]).all()  # symmetric about the vertical axis


def test_centres_lie_in_the_named_cells() -> None:
    rng = np.random.default_rng(1)
    for position in POSITIONS:
        for size in ("small", "large"):
            for _ in range(20):
                o = sample_single(rng, size=size, position=position).objects[0]
                assert o.position == position
                cx, cy = o.center
                # 1 px of slack: the cell survives a 1 px error
                assert world.position_name((cx - 1, cy - 1)) == world.position_name((cx + 1, cy + 1)) == position


def test_sampling_is_reproducible() -> None:
    assert scenes(50, seed=3) == scenes(50, seed=3)
    assert scenes(50, seed=3) != scenes(50, seed=4)
    assert Counter(s.kind for s in scenes(500)).keys() == {"single", "pair", "count"}


def test_scene_validation_refuses_contract_violations() -> None:
    with pytest.raises(ValueError):
        Scene((Obj("red", "circle", "small", 2, 10),))  # too close to the border
    with pytest.raises(ValueError):
        Scene((Obj("red", "circle", "small", 10, 10), Obj("blue", "square", "small", 24, 10)))  # 2 px apart
    with pytest.raises(ValueError):  # apart on both axes: the relation is ambiguous
        Scene((Obj("red", "circle", "small", 5, 5), Obj("blue", "square", "small", 40, 40)))
    with pytest.raises(ValueError):
        Scene((Obj("red", "circle", "large", 5, 5), Obj("red", "circle", "small", 40, 5)))  # counting: small only
    with pytest.raises(ValueError):
        Obj("pink", "circle", "small", 5, 5)


def test_pair_scenes_are_apart_on_exactly_one_axis() -> None:
    rng = np.random.default_rng(2)
    for _ in range(300):
        scene = sample_pair(rng)
        a, b = scene.objects
        assert (a.color, a.shape) != (b.color, b.shape)
        offsets = sorted(abs(p - q) for p, q in zip(a.center, b.center))
        assert offsets[0] <= world.MAX_OFF_AXIS < 12 <= offsets[1]


def test_captions_follow_the_grammar_and_depend_only_on_the_image() -> None:
    seen_relations = set()
    for scene in scenes(600):
        caption = scene.caption
        m = CAPTION_RES[scene.kind].fullmatch(caption)
        assert m, caption
        # Same image, objects listed in another order: same caption; and read back from pixels.
        assert Scene(scene.objects[::-1]).caption == caption
        assert scene_from_image(render(scene)).caption == caption
        if scene.kind == "pair":
            a, b = scene.ordered()
            assert a.order < b.order and m[1] == a.color and m[4] == b.color
            assert world.relation_holds(m[3], a.center, b.center)
            seen_relations.add(m[3])
        if scene.kind == "count":
            assert all(o.size == "small" for o in scene.objects)
            assert m[1] == {2: "two", 3: "three"}[len(scene.objects)]
    assert seen_relations == set(RELATIONS)


def test_caption_examples() -> None:
    assert Scene((Obj("orange", "circle", "large", 21, 21),)).caption == "a large orange circle in the center"
    left_blue_square = Obj("blue", "square", "small", 5, 30)
    right_red_circle = Obj("red", "circle", "small", 40, 28)
    # red comes before blue in the palette: red is named first, whatever the object order.
    assert Scene((left_blue_square, right_red_circle)).caption == "a red circle to the right of a blue square"
    assert Scene((right_red_circle, left_blue_square)).caption == "a red circle to the right of a blue square"
    same_color = Scene((Obj("red", "triangle", "small", 30, 5), Obj("red", "circle", "large", 28, 30)))
    assert same_color.caption == "a red circle below a red triangle"  # circle before triangle
    assert sample_count(np.random.default_rng(0), 3, "green", "triangle").caption == "three green triangles"


def test_prompts_describe_the_image_and_parse_back() -> None:
    rng = np.random.default_rng(5)
    for scene in scenes(200):
        specs = prompts(scene)
        assert specs[0].text == scene.caption
        assert len(specs) == {"single": 8, "pair": 4, "count": 2}[scene.kind]
        assert sum(s.text.startswith("an image of ") for s in specs) == len(specs) // 2
        image = render(scene)
        for spec in specs:
            assert parse_prompt(spec.text) == spec
            category = "position" if spec.relation else spec.category
            assert judge(spec.__class__(category, spec.text, spec.objects, spec.relation, spec.count), image).correct
        if scene.kind == "pair":  # reversed naming with the inverse relation
            first, second = specs[0], specs[1]
            assert first.objects[::-1] == second.objects and world.INVERSE[first.relation] == second.relation
        for spec in specs:  # every prompt of the scene stands for its caption, among others where it omits some
            assert scene.caption in language.captions_for_prompt(spec.text)
            assert len(language.captions_for_prompt(spec.text)) == (
                (1 if spec.objects[0].size else 2) * (1 if spec.objects[0].position else 9) if scene.kind == "single" else 1)
    assert parse_prompt("A red circle.").text == "a red circle"
    for bad in ("a pink circle", "a red circle to the left of a red circle", "four red circles", "a circle"):
        with pytest.raises(ValueError):
            parse_prompt(bad)
    assert language.scene_for_prompt(parse_prompt("a small red circle in the top left"), rng).caption == \
        "a small red circle in the top left"
    assert language.captions_for_prompt("An image of a blue square below a red circle.") == \
        ("a red circle above a blue square",)
    assert language.captions_for_prompt("a large red circle") == tuple(f"a large red circle in the {p}" for p in POSITIONS)
    with pytest.raises(ValueError, match="not a shapes-world prompt"):
        language.captions_for_prompt("a cat")


def test_split_checks_hold_at_a_ranking_line_of_every_scene_and_never_for_a_wrong_prompt() -> None:
    """A relation prompt's split check is along its axis with the object before the line asked first (`a red
    circle below a blue square`: a horizontal line, `Is there a blue square?` above it); a count's is either way,
    `How many shapes are there?` on both sides, one and one (two) or one and two either way round (three). On
    every pair and count scene, for each of its prompts, some line at the ranking's `SPLIT_LINES` has parts
    (the objects whose centres lie before it, and the others) whose right answers are one of the check's answer
    pairs; for the inverse relation, and for the other count, no line has."""
    from januspro.processing.split_check import SplitCheck
    from januspro.scoring import SPLIT_LINES

    assert language.split_checks("an image of a red circle below a blue square.") == (
        SplitCheck(("y",), "Is there a blue square?", "Is there a red circle?"),)
    assert language.split_checks("a red circle to the left of a blue square") == (
        SplitCheck(("x",), "Is there a red circle?", "Is there a blue square?"),)
    count = "How many shapes are there?"
    assert language.split_checks("three red circles") == (
        SplitCheck(("x", "y"), count, count, (("one", "two"), ("two", "one")), ("one", "two", "three")),)
    assert language.split_checks("two red circles")[0].answers == (("one", "one"),)
    assert language.split_checks("a red circle") == () and language.split_checks("a small red circle in the top") == ()
    with pytest.raises(ValueError):
        language.split_checks("a cat above a dog")
    for bad in (dict(axes=("z",)), dict(axes=()), dict(answers=(("yes", "maybe"),)), dict(choices=("yes",))):
        with pytest.raises(ValueError):
            SplitCheck(**{"axes": ("x",), "before": "Is there a red circle?", "after": "Is there a red circle?", **bad})

    def answers(objects: list[Obj], question: str) -> str | None:
        return language.answer(Scene(tuple(objects)), question) if objects else None

    def holds(scene: Scene, check: SplitCheck) -> bool:
        for axis in check.axes:
            index = 0 if axis == "x" else 1
            for line in (round(f * 64) for f in SPLIT_LINES):
                before = [o for o in scene.objects if o.center[index] < line]
                after = [o for o in scene.objects if o.center[index] >= line]
                if (answers(before, check.before), answers(after, check.after)) in check.answers:
                    return True
        return False

    rng = np.random.default_rng(8)
    for _ in range(150):
        scene = sample_pair(rng) if rng.random() < 0.6 else sample_count(rng)
        for spec in prompts(scene):
            assert holds(scene, *language.split_checks(spec.text)), spec.text
            if spec.relation is not None:
                a, b = spec.objects
                wrong = f"a {a.color} {a.shape} {world.INVERSE[spec.relation]} a {b.color} {b.shape}"
            else:
                o = spec.objects[0]
                wrong = f"{world.NUMBER_WORDS[5 - spec.count]} {o.color} {o.shape}s"
            assert not holds(scene, *language.split_checks(wrong)), wrong


def test_image_part_paints_one_side_of_a_line_white() -> None:
    picture = Image.fromarray(np.arange(8 * 6 * 3, dtype=np.uint8).reshape(6, 8, 3))  # 8 wide, 6 high
    original = np.asarray(picture).copy()
    from januspro.processing.image import image_part

    for axis, line, before in (("x", 3, True), ("x", 3, False), ("y", 2, True), ("y", 2, False), ("x", 0, True)):
        part = np.asarray(image_part(picture, axis, line, before))
        keep = np.zeros((6, 8), dtype=bool)
        if axis == "x":
            keep[:, :line] = before
            keep[:, line:] = not before
        else:
            keep[:line] = before
            keep[line:] = not before
        assert np.array_equal(part[keep], original[keep]) and (part[~keep] == 255).all(), (axis, line, before)
    assert np.array_equal(np.asarray(picture), original)  # the input is left as it was
    with pytest.raises(ValueError, match="axis"):
        image_part(picture, "z", 3, True)


def test_patch_contents_marks_the_patches_each_object_covers() -> None:
    red_circle = Obj("red", "circle", "small", 5, 30)  # x 5-16, y 30-41
    blue_square = Obj("blue", "square", "large", 35, 28)  # x 35-56, y 28-49
    contents = world.patch_contents(Scene((red_circle, blue_square)), 16)
    assert contents.shape == (16, 18)
    red = world.COLORS.index("red") * 3 + world.SHAPES.index("circle")
    blue = world.COLORS.index("blue") * 3 + world.SHAPES.index("square")
    # Patch (row, col) is index 4 * row + col; the circle lies in column 0, rows 1 and 2, and its last pixel
    # column (x = 16, y 34-37) puts exactly 4 px into patch (2, 1); the square covers columns 2-3, rows 1-3.
    assert list(np.flatnonzero(contents[:, red])) == [4, 8, 9]
    assert list(np.flatnonzero(contents[:, blue])) == [6, 7, 10, 11, 14, 15]
    assert contents.sum() == 9 and set(np.flatnonzero(contents.sum(0))) == {red, blue}
    assert list(np.flatnonzero(world.patch_contents(Scene((red_circle,)), 16, min_pixels=5)[:, red])) == [4, 8]
    # Every object pixel falls in some patch: with a 1-pixel threshold the marked patches hold the whole mask.
    for scene in scenes(50):
        marked = world.patch_contents(scene, 8, min_pixels=1).reshape(8, 8, 18).any(-1)
        drawn = (world.render_array(scene) != 255).any(-1).reshape(8, 8, 8, 8).any(axis=(1, 3))
        assert (marked == drawn).all()
    with pytest.raises(ValueError, match="divide"):
        world.patch_contents(Scene((red_circle,)), 10)


def test_patch_contents_geometry_says_where_each_patchs_object_lies() -> None:
    red_circle = Obj("red", "circle", "small", 5, 30)  # centre (10.5, 35.5)
    blue_square = Obj("blue", "square", "large", 35, 28)  # centre (45.5, 38.5)
    plain = world.patch_contents(Scene((red_circle, blue_square)), 16)
    contents = world.patch_contents(Scene((red_circle, blue_square)), 16, geometry=True)
    steps = len(world.GEOMETRY_STEPS)
    assert contents.shape == (16, 18 + 2 * steps + 1)
    assert (contents[:, :18] == plain).all()  # the identity columns are unchanged
    x_bits, y_bits, large = contents[:, 18:18 + steps], contents[:, 18 + steps:-1], contents[:, -1]
    # The circle's patches: centre x 10.5 > 8 only; y 35.5 > 8 .. 32 (4 bits); small.
    for index in (4, 8):
        assert x_bits[index].tolist() == [1, 0, 0, 0, 0, 0, 0]
        assert y_bits[index].tolist() == [1, 1, 1, 1, 0, 0, 0]
        assert large[index] == 0
    # The square's: x 45.5 > 8 .. 40 (5 bits), y 38.5 (4 bits), large.
    for index in (6, 7, 10, 11, 14, 15):
        assert x_bits[index].sum() == 5 and y_bits[index].sum() == 4 and large[index] == 1
    # Empty patches say nothing; left of compares by counting bits.
    assert contents[0].sum() == 0 and x_bits[4].sum() < x_bits[6].sum()


def test_patch_contents_relations_say_how_each_patchs_object_stands_to_the_others() -> None:
    red_circle = Obj("red", "circle", "small", 5, 30)  # centre (10.5, 35.5)
    blue_square = Obj("blue", "square", "large", 35, 28)  # centre (45.5, 38.5): right of it, same height
    pair = Scene((red_circle, blue_square))
    geometry = world.patch_contents(pair, 16, geometry=True)
    contents = world.patch_contents(pair, 16, geometry=True, relations=True)
    assert contents.shape == (16, geometry.shape[1] + len(world.RELATIONS))
    assert (contents[:, :geometry.shape[1]] == geometry).all()
    stands = {world.RELATIONS[i] for i in np.flatnonzero(contents[4, -4:])}
    assert stands == {"to the left of"}  # the circle's patch
    assert {world.RELATIONS[i] for i in np.flatnonzero(contents[6, -4:])} == {"to the right of"}
    assert contents[0, -4:].sum() == 0  # an empty patch
    # Without geometry the relation columns follow the identity ones; a lone object stands to nothing.
    assert world.patch_contents(pair, 16, relations=True).shape == (16, 18 + 4)
    assert world.patch_contents(Scene((red_circle,)), 16, relations=True)[:, -4:].sum() == 0
    # On random scenes the bits agree with the relation the caption states.
    for scene in scenes(60):
        if scene.kind != "pair":
            continue
        a, b = scene.ordered()
        marked = world.patch_contents(scene, 16, relations=True)
        a_patches = np.flatnonzero(marked[:, a.label])
        a_only = [p for p in a_patches if marked[p, b.label] == 0]
        assert a_only, scene.caption
        assert marked[a_only[0], 18 + world.RELATIONS.index(scene.relation)] == 1


def test_descriptions_are_exactly_the_phrases_true_of_the_scene() -> None:
    red_circle = Obj("red", "circle", "small", 5, 30)
    blue_square = Obj("blue", "square", "large", 35, 28)
    pair = Scene((red_circle, blue_square))
    assert language.descriptions(pair) == (
        "a circle", "a red object", "a red circle", "a small circle",
        "a square", "a blue object", "a blue square", "a large square",
        "two shapes", "a red circle to the left of a blue square",
    )
    assert language.descriptions(Scene((red_circle,)))[-2:] == ("one shape", "a small red circle in the left")
    # A phrase of one scene is in another scene's descriptions exactly when it is true there.
    all_scenes = scenes(300)
    for scene in all_scenes[:40]:
        shapes_in = {o.shape for o in scene.objects}
        colors_in = {o.color for o in scene.objects}
        for other in all_scenes[:40]:
            for phrase in language.descriptions(other):
                words = phrase.split()
                if len(words) == 2 and words[1] in SHAPES:
                    assert (phrase in language.descriptions(scene)) == (words[1] in shapes_in)
                if words[-1] == "object":
                    assert (phrase in language.descriptions(scene)) == (words[1] in colors_in)


def test_questions_answers_are_right_on_ground_truth() -> None:
    rng = np.random.default_rng(6)
    counts: Counter = Counter()
    for scene in scenes(500, seed=7):
        seen = scene_from_image(render(scene))  # answers must follow from the pixels alone
        assert {q.qtype for q in questions(scene, rng)} == set(question_types(scene))
        for qtype in language.QUESTION_TYPES:
            qa = question(scene, qtype, rng)
            if qa is None:
                assert qtype not in question_types(scene)
                continue
            assert answer(seen, qa.question) == qa.answer, (scene, qa)
            assert qa.answer == qa.answer.lower() and not qa.answer.endswith(".")
            counts[qtype, qa.answer] += 1
    assert counts["count", "one"] and counts["count", "two"] and counts["count", "three"]
    for qtype in ("exists", "relation"):  # balanced yes / no
        yes, no = counts[qtype, "yes"], counts[qtype, "no"]
        assert 0.4 < yes / (yes + no) < 0.6


def test_question_examples() -> None:
    rng = np.random.default_rng(0)
    scene = Scene((Obj("blue", "square", "small", 5, 30), Obj("red", "circle", "small", 40, 28)))
    assert answer(scene, "What color is the square?") == "blue"
    assert answer(scene, "What shape is the red object?") == "circle"
    assert answer(scene, "How many shapes are there?") == "two"
    assert answer(scene, "Is there a red circle?") == "yes" and answer(scene, "Is there a red square?") == "no"
    assert answer(scene, "Is the blue square to the left of the red circle?") == "yes"
    assert answer(scene, "Is the red circle to the left of the blue square?") == "no"
    assert answer(scene, "Is the blue square above the red circle?") == "no"
    assert answer(scene, "Describe the image.") == "a red circle to the right of a blue square"
    assert answer(scene, "What is the meaning of life?") is None
    assert question(scene, "position", rng) is None  # one-object scenes only
    single = Scene((Obj("yellow", "triangle", "large", 38, 3),))
    assert answer(single, "Where is the yellow triangle?") == "top right"
    assert question(single, "relation", rng) is None
    count = sample_count(rng, 2, "red", "circle")
    assert question(count, "color", rng) is None and question(count, "shape", rng) is None
    qa = question(scene, "relation", rng, yes=False)
    assert qa.answer == "no" and qa.statement.startswith("the ") and " is not " in qa.statement


@pytest.mark.parametrize("given, expected", [
    ("Red.", "red"), ("  The  Red ", "red"), ("a small red circle in the top left", "small red circle in the top left"),
    ("Top-left!", "top left"), ("Yes", "yes"), ("an orange square", "orange square"), ("theater", "theater"),
    ("", ""),
])
def test_normalize_answer(given: str, expected: str) -> None:
    assert normalize_answer(given) == expected


# ----------------------------------------------------------------------------- dataset


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dataset_format_and_content(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "a", seed=3, n_t2i=20, n_understanding=50, n_text=15, multi_turn=0.5)
    assert manifest == tmp_path / "a" / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    assert Counter(r["kind"] for r in records) == {"t2i": 20, "understanding": 50, "text": 15}
    assert len(list((tmp_path / "a" / "images").glob("*.png"))) == 25  # 50 understanding / 2 per image
    turns = Counter()
    for r in records:
        if r["kind"] == "t2i":
            assert set(r) == {"kind", "prompt", "image"}
            image = Image.open(tmp_path / "a" / r["image"])
            assert image.size == (64, 64) and image.mode == "RGB"
            spec = parse_prompt(r["prompt"])
            assert judge(spec, image).correct
        elif r["kind"] == "understanding":
            assert set(r) == {"kind", "images", "messages"} and len(r["images"]) == 1
            scene = scene_from_image(Image.open(tmp_path / "a" / r["images"][0]))
            messages = r["messages"]
            assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
            assert messages[0]["content"].startswith("<image_placeholder>\n")
            assert all("<image_placeholder>" not in m["content"] for m in messages[1:])
            for q, a in zip(messages[::2], messages[1::2]):
                assert answer(scene, q["content"].replace("<image_placeholder>\n", "")) == a["content"]
            turns[len(messages) // 2] += 1
        else:
            assert set(r) == {"kind", "text"} and r["text"] and "Q:" not in r["text"]
    assert turns.keys() == {1, 2, 3}
    absolute = list(read_records(tmp_path / "a"))
    assert Path(absolute[0]["image"]).is_absolute() and Path(absolute[0]["image"]).is_file()


def test_dataset_is_reproducible_and_matches_the_stream(tmp_path: Path) -> None:
    write_dataset(tmp_path / "a", seed=5, n_t2i=12, n_understanding=10, n_text=5)
    write_dataset(tmp_path / "b", seed=5, n_t2i=12, n_understanding=10, n_text=5)
    write_dataset(tmp_path / "c", seed=6, n_t2i=12, n_understanding=10, n_text=5)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a") != files(tmp_path / "c")
    stream = iter_samples(5)
    for index in range(12):
        sample = next(stream)
        written = np.asarray(Image.open(tmp_path / "a" / "images" / f"{index:06d}.png"))
        assert (written == np.asarray(sample.image)).all()
        assert sample.prompts[0].text == sample.scene.caption and sample.questions


def test_text_paragraphs_are_a_prompt_and_true_facts(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    kinds = Counter()
    for _ in range(150):
        scene = sample_scene(rng)
        head, *facts = text_record(scene, rng, paragraph=True)["text"].split(". ")
        assert head in {p.text for p in language.prompts(scene)}
        assert 2 <= len(facts) <= 3 and scene.caption not in facts
        probe = np.random.default_rng(0)
        true = {qa.statement for t in question_types(scene) for _ in range(100)
                if (qa := question(scene, t, probe)) is not None}
        present = {f"there is no {o.name}" for o in scene.objects}
        negatives = {f for f in facts if f.startswith("there is no ")}  # 15 or more absent objects to draw from
        assert not negatives & present and set(facts) - negatives <= true, (scene.caption, facts)
        kinds[scene.kind] += 1
    assert kinds.keys() == {"single", "pair", "count"}
    # Paragraphs replace text records only; the images and the other records stay as they were.
    write_dataset(tmp_path / "a", seed=5, n_t2i=6, n_understanding=6, n_text=20)
    write_dataset(tmp_path / "b", seed=5, n_t2i=6, n_understanding=6, n_text=20, text_paragraphs=1.0)
    a, b = ([json.loads(line) for line in (tmp_path / x / "manifest.jsonl").read_text().splitlines()] for x in "ab")
    assert [r for r in a if r["kind"] != "text"] == [r for r in b if r["kind"] != "text"]
    assert all(". " in r["text"] for r in b if r["kind"] == "text")
    assert not any(". " in r["text"] for r in a if r["kind"] == "text")
    with pytest.raises(InputError, match="text_paragraphs"):
        write_dataset(tmp_path / "c", seed=5, n_t2i=1, n_understanding=0, n_text=1, text_paragraphs=1.5)


def test_paragraph_chats_ask_the_prompt_and_answer_the_facts(tmp_path: Path) -> None:
    """A paragraph as a chat: an image-free conversation whose user turn is a prompt of the scene and
    whose answer is the paragraph's facts; the other records are those of the plain-paragraph dataset."""
    rng = np.random.default_rng(4)
    scene = sample_scene(rng)
    chat = text_record(scene, rng, paragraph=True, chat=True)
    assert chat["kind"] == "understanding" and chat["images"] == []
    (user, assistant) = chat["messages"]
    assert user["role"] == "user" and user["content"] in {p.text for p in language.prompts(scene)}
    assert assistant["role"] == "assistant" and 2 <= len(assistant["content"].split(". ")) <= 3
    with pytest.raises(InputError, match="paragraph"):
        text_record(scene, rng, chat=True)

    def records(folder: str, share: float) -> list[dict]:
        write_dataset(tmp_path / folder, seed=5, n_t2i=6, n_understanding=6, n_text=60, text_paragraphs=1.0,
                      paragraph_chats=share)
        return [json.loads(line) for line in (tmp_path / folder / "manifest.jsonl").read_text().splitlines()]

    def is_chat(record: dict) -> bool:
        return record["kind"] == "understanding" and record["images"] == []

    plain, half, full = records("a", 0.0), records("b", 0.5), records("c", 1.0)
    chats = [[r for r in rs if is_chat(r)] for rs in (plain, half, full)]
    assert len(chats[0]) == 0 and 10 < len(chats[1]) < 50 and len(chats[2]) == 60
    assert [r for r in plain if r["kind"] != "text"] == [r for r in half if r["kind"] != "text" and not is_chat(r)]
    assert not any(r["kind"] == "text" for r in full)
    with pytest.raises(InputError, match="paragraph_chats"):
        write_dataset(tmp_path / "d", seed=5, n_t2i=1, n_understanding=0, n_text=1, paragraph_chats=-0.1)


QUESTION_OPENINGS = {"Is there": "exists", "Is the": "relation", "What color": "color", "What shape": "shape",
                     "How many": "count", "Where is": "position", "Describe the": "describe"}


def question_type_of(text: str) -> str:
    return QUESTION_OPENINGS[" ".join(text.split("\n")[-1].split()[:2])]


def test_question_weights_set_how_often_each_type_is_asked(tmp_path: Path) -> None:
    def asked(folder: Path) -> Counter:
        counts: Counter = Counter()
        for line in (folder / "manifest.jsonl").read_text().splitlines():
            record = json.loads(line)
            for message in record.get("messages", [])[::2]:
                counts[question_type_of(message["content"])] += 1
        return counts

    write_dataset(tmp_path / "u", seed=3, n_t2i=150, n_understanding=300, n_text=0, multi_turn=0.0)
    write_dataset(tmp_path / "w", seed=3, n_t2i=150, n_understanding=300, n_text=0, multi_turn=0.0,
                  question_weights={"exists": 6.0, "count": 0.0})
    uniform, weighted = asked(tmp_path / "u"), asked(tmp_path / "w")
    assert weighted["count"] == 0 and uniform["count"] > 20
    assert weighted["exists"] > 2.5 * uniform["exists"]
    # Multi-turn conversations never repeat a type and never ask one weighted 0.
    write_dataset(tmp_path / "m", seed=3, n_t2i=50, n_understanding=100, n_text=0, multi_turn=1.0,
                  question_weights={"exists": 0.0, "describe": 3.0})
    for line in (tmp_path / "m" / "manifest.jsonl").read_text().splitlines():
        types = [question_type_of(m["content"]) for m in json.loads(line).get("messages", [])[::2]]
        assert "exists" not in types and len(types) == len(set(types))
    for bad in ({"colour": 1.0}, {"exists": -1.0}, dict.fromkeys(language.QUESTION_TYPES, 0.0)):
        with pytest.raises(InputError, match="question"):
            write_dataset(tmp_path / "x", seed=3, n_t2i=1, n_understanding=1, n_text=0, question_weights=bad)


def test_dataset_refuses_held_out_seeds_and_existing_data(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="held out"):
        write_dataset(tmp_path / "x", seed=HELD_OUT_SEED, n_t2i=1, n_understanding=0, n_text=0)
    with pytest.raises(InputError, match="held out"):
        next(iter_samples(7777))
    with pytest.raises(InputError):
        write_dataset(tmp_path / "x", seed=-1, n_t2i=1, n_understanding=0, n_text=0)
    write_dataset(tmp_path / "x", seed=7777, n_t2i=2, n_understanding=0, n_text=0, allow_held_out=True)
    with pytest.raises(InputError, match="exists"):
        write_dataset(tmp_path / "x", seed=1, n_t2i=1, n_understanding=0, n_text=0)
    write_dataset(tmp_path / "x", seed=1, n_t2i=1, n_understanding=0, n_text=0, overwrite=True)
    assert len(list((tmp_path / "x" / "images").glob("*.png"))) == 1
    with pytest.raises(InputError):
        write_dataset(tmp_path / "y", seed=1, n_t2i=-1, n_understanding=0, n_text=0)
