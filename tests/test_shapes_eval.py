"""ShapesEval end to end: test sets, scoring (with a perfect and a broken stand-in model), the
tiny random checkpoint, and `januspro eval shapes`."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import pytest
import torch

from januspro.errors import InputError
from januspro.shapes.evaluate import (
    EVAL_SEED, PROBED_WORDS, EvalOptions, ShapesEvalReport, code_diversity, eval_prompts, eval_questions, evaluate,
    format_report, probe_scenes,
)
from januspro.shapes.judge import CATEGORIES, judge, scene_from_image
from januspro.shapes.language import QUESTION_TYPES, answer, parse_prompt, scene_for_prompt
from januspro.shapes.world import render


@pytest.fixture()
def one_thread():  # noqa: ANN201
    """Tiny models run fastest on one thread (on a busy 2-core machine, 2 threads can be 20x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class OracleJanus:
    """Draws exactly what each prompt says and answers from the pixels: should score 1.0."""

    name = "oracle"
    config = SimpleNamespace(gen_vision=SimpleNamespace(image_size=64))

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.calls: list[tuple[str, object]] = []

    def cfg_weight(self, requested: float | None) -> float:
        return 4.0 if requested is None else requested  # 4: this model's default guidance

    def image_temperature(self, requested: float | None) -> float:
        return 0.7 if requested is None else requested  # and 0.7 its default sampling temperature

    def candidates(self, options) -> int:  # noqa: ANN001
        return 5 if options.candidates is None else options.candidates  # and 5 samples per image its default

    def generate_images(self, prompt: str, options) -> SimpleNamespace:  # noqa: ANN001
        self.calls.append(("generate", options))
        rng = np.random.default_rng(options.seed)
        spec = parse_prompt(prompt)
        if self.broken:  # the right scene, mirrored: relations and some positions go wrong
            images = [render(scene_for_prompt(spec, rng)).transpose(0) for _ in range(options.n)]
        else:
            images = [render(scene_for_prompt(spec, rng)) for _ in range(options.n)]
        codes = torch.tensor(np.stack([np.asarray(image)[4::8, 4::8].sum(-1).reshape(-1) for image in images]))
        return SimpleNamespace(images=images, codes=codes)  # codes: a coarse stand-in, one per 8 x 8 block

    def image_code_logprobs(self, images: Sequence, prompt: str) -> list[float]:
        """0 for an image the prompt describes, -1 otherwise (broken: -1 whatever the prompt)."""
        spec = parse_prompt(prompt)
        if spec.relation:
            spec = parse_prompt(prompt, "position")  # the category that judges the relation
        return [-1.0 if self.broken or not judge(spec, image).correct else 0.0 for image in images]

    def chat_batch(self, conversations: Sequence, options) -> list[SimpleNamespace]:  # noqa: ANN001
        self.calls.append(("chat", options))
        out = []
        for conversation in conversations:
            (message,) = conversation
            scene = scene_from_image(message.images[0])
            text = "no" if self.broken else answer(scene, message.text)
            if not text.startswith("a "):
                text = f"the {text}"
            out.append(SimpleNamespace(text=f"{text.capitalize()}.", unverified=None))  # case, article, period ignored
        return out


def test_eval_prompts_are_reproducible_and_cover_each_category() -> None:
    for category in CATEGORIES:
        specs = eval_prompts(category, 40)
        assert specs == eval_prompts(category, 40, EVAL_SEED)
        assert specs[:5] == eval_prompts(category, 5)  # a prefix, whatever N
        assert specs != eval_prompts(category, 40, seed=1)
        assert any(s.text.startswith("an image of ") for s in specs)
        for spec in specs:
            parsed = parse_prompt(spec.text, category)
            assert parsed == spec
            if category in ("single_object", "colors"):
                assert len(spec.objects) == 1
            elif category == "counting":
                assert spec.count in (2, 3)
            else:
                assert len(spec.objects) == 2 and spec.relation
        if category == "colors":
            assert all(s.objects[0].size is None and s.objects[0].position is None for s in specs)
        if category == "color_attribution":
            assert all(a.color != b.color and a.shape != b.shape for a, b in (s.objects for s in specs))
        if category == "single_object":  # full and reduced forms
            assert any(s.objects[0].size for s in specs) and any(not s.objects[0].position for s in specs)
    with pytest.raises(InputError):
        eval_prompts("nope", 1)


def test_eval_questions_have_equal_numbers_per_type_and_balanced_yes_no() -> None:
    items = eval_questions(10)
    assert Counter(qa.qtype for _, qa in items) == {t: 10 for t in QUESTION_TYPES}
    for qtype in ("exists", "relation"):
        assert Counter(qa.answer for _, qa in items if qa.qtype == qtype) == {"yes": 5, "no": 5}
    for scene, qa in items:
        assert answer(scene, qa.question) == qa.answer
    assert eval_questions(10) == items


def test_a_perfect_model_scores_one() -> None:
    oracle = OracleJanus()
    options = EvalOptions(prompts_per_category=6, images_per_prompt=3, questions_per_type=6, batch_size=8)
    report = evaluate(oracle, options)
    g, u = report.generation, report.understanding
    assert [s.name for s in g.categories] == list(CATEGORIES)
    assert all((s.correct, s.total) == (18, 18) for s in g.categories) and g.overall == 1.0
    assert [s.name for s in u.types] == list(QUESTION_TYPES)
    assert all((s.correct, s.total) == (6, 6) for s in u.types) and u.overall == 1.0
    generate = [o for kind, o in oracle.calls if kind == "generate"]
    assert len(generate) == 36 and all(o.n == 3 and o.cfg_weight == 4.0 and o.temperature == 0.7 for o in generate)
    assert g.cfg_weight == 4.0 and g.temperature == 0.7  # the model's defaults, reported
    assert 0 < g.diversity < 1 and 0 <= g.duplicates < 1  # fresh scenes per image: mostly different codes
    assert len({o.seed for o in generate}) == 36  # a seed per prompt
    chat = [o for kind, o in oracle.calls if kind == "chat"]
    assert len(chat) == 6 and all(o.temperature == 0.0 and o.max_new_tokens == 48 for o in chat)  # 42 / 8


def test_a_broken_model_scores_what_it_deserves() -> None:
    report = evaluate(OracleJanus(broken=True), EvalOptions(prompts_per_category=8, images_per_prompt=2, questions_per_type=8))
    scores = {s.name: s.score for s in report.generation.categories}
    assert scores["colors"] == scores["two_objects"] == scores["counting"] == 1.0  # mirroring keeps these
    assert scores["position"] < 1.0  # left and right swap
    accuracy = {s.name: s.score for s in report.understanding.types}
    assert accuracy["exists"] == accuracy["relation"] == 0.5  # always "no"
    assert accuracy["color"] == accuracy["describe"] == 0.0
    assert 0 < report.understanding.overall < 1


class CheckingJanus(OracleJanus):
    """Answers every relation question `no` on its own, and right once it checks its answer (`ChatResult.unverified`
    holds the `no` it changed)."""

    def chat_batch(self, conversations: Sequence, options) -> list[SimpleNamespace]:  # noqa: ANN001
        out = []
        for conversation, result in zip(conversations, super().chat_batch(conversations, options)):
            own = "no" if conversation[0].text.startswith("Is the ") else None
            out.append(SimpleNamespace(text=result.text, unverified=own if own and own not in result.text.lower() else None))
        return out


def test_the_model_s_own_answers_are_reported_beside_the_checked_ones() -> None:
    options = EvalOptions(prompts_per_category=2, images_per_prompt=1, questions_per_type=8, generation=False)
    report = evaluate(CheckingJanus(), options)
    u = report.understanding
    assert u.overall == 1.0 and {s.name: s.score for s in u.unchecked_types}["relation"] == 0.5
    assert all(s.score == 1.0 for s in u.unchecked_types if s.name != "relation")
    assert u.unchecked_overall == pytest.approx(1 - 4 / 56)
    changed = [o for o in u.outcomes if o.unchecked_answer is not None]
    assert len(changed) == 4 and all(o.correct and not o.right_unchecked and o.expected == "yes" for o in changed)
    out = report.to_dict(details=True)["understanding"]
    assert out["types"]["relation"] == {"accuracy": 1.0, "correct": 8, "questions": 8, "unchecked_accuracy": 0.5}
    assert out["unchecked_overall"] == u.unchecked_overall
    assert sum("unchecked_answer" in q for q in out["questions"]) == 4
    table = format_report(report)
    assert "unchecked" in table and "0.500" in table.split("relation")[1].splitlines()[0]
    # A model that checks nothing reports the same figures twice.
    plain = evaluate(OracleJanus(), options).understanding
    assert plain.unchecked_overall == plain.overall == 1.0


class BadRankerJanus(OracleJanus):
    """Draws `candidates` samples per image, every other one mirrored (so left and right swap), and keeps the
    mirrored ones: a generator that is right half the time with a ranking that always picks wrong."""

    def generate_images(self, prompt: str, options) -> SimpleNamespace:  # noqa: ANN001
        self.calls.append(("generate", options))
        rng = np.random.default_rng(options.seed)
        spec = parse_prompt(prompt)
        drawn = [render(scene_for_prompt(spec, rng)) for _ in range(options.n * options.candidates)]
        drawn = [image.transpose(0) if i % 2 else image for i, image in enumerate(drawn)]
        picked = tuple(range(1, 2 * options.n, 2))
        images = [drawn[i] for i in picked]
        codes = torch.tensor(np.stack([np.asarray(image)[4::8, 4::8].sum(-1).reshape(-1) for image in images]))
        return SimpleNamespace(images=images, codes=codes, drawn=drawn if options.keep_drawn else [],
                               picked=picked if options.keep_drawn else ())


def test_judging_every_drawn_sample_tells_the_generator_from_the_ranking() -> None:
    model = BadRankerJanus()
    options = EvalOptions(prompts_per_category=8, images_per_prompt=2, candidates=4, understanding=False,
                          judge_drawn=True)
    g = evaluate(model, options).generation
    assert all(o.keep_drawn and o.candidates == 4 for _, o in model.calls)
    drawn = {d.name: d for d in g.drawn}
    kept = {s.name: s.score for s in g.categories}
    assert all(d.drawn == 8 * 2 * 4 and d.images == 8 * 2 for d in g.drawn)
    assert all(len(o.drawn_correct) == 8 for o in g.outcomes)
    # Mirroring keeps colours and counts: every sample right, every ranking too.
    assert drawn["colors"].share == drawn["colors"].ceiling == kept["colors"] == 1.0
    # It swaps left and right: half the samples of a left/right prompt are wrong, and those are the ones kept,
    # yet the right half would have filled every judged image.
    position = drawn["position"]
    assert position.ceiling == 1.0 and 0.5 <= position.share < 1.0 and kept["position"] < position.share
    assert position.right == sum(sum(o.drawn_correct) for o in g.outcomes if o.category == "position")
    data = evaluate(BadRankerJanus(), options).to_dict(details=True)["generation"]
    assert data["drawn"]["position"] == {"samples": 64, "samples_right": position.share, "best_possible": 1.0}
    assert {"drawn", "drawn_right"} <= set(data["prompts"][0])
    text = format_report(evaluate(BadRankerJanus(), options))
    assert "every drawn sample judged" in text and "best possible" in text
    # Off (the default): nothing extra is asked of the model or reported.
    plain = evaluate(model := BadRankerJanus(), replace(options, judge_drawn=False)).generation
    assert plain.drawn is None and not any(o.keep_drawn for _, o in model.calls)
    assert all(o.drawn_correct == () for o in plain.outcomes) and "every drawn sample" not in format_report(
        evaluate(BadRankerJanus(), replace(options, judge_drawn=False)))
    with pytest.raises(InputError, match="needs the generation evaluation"):
        EvalOptions(generation=False, judge_drawn=True).check()


def test_code_diversity_measures_how_different_one_prompts_images_are() -> None:
    same = torch.tensor([[1, 2, 3, 4]] * 3)
    assert code_diversity(same) == (0.0, 1.0)  # three copies: nothing differs, every pair identical
    apart = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert code_diversity(apart) == (1.0, 0.0)
    mixed = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 0, 0]])  # pairs: identical, half, half
    assert code_diversity(mixed) == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert code_diversity(torch.tensor([[1, 2]])) == (None, None)  # one image: no pairs


def test_report_rendering_and_options() -> None:
    report = evaluate(OracleJanus(), EvalOptions(prompts_per_category=1, images_per_prompt=1, questions_per_type=1,
                                                 understanding=False))
    assert report.understanding is None
    assert report.generation.cfg_weight == 4.0
    text = format_report(report)
    assert all(c in text for c in CATEGORIES) and "overall" in text and "understanding" not in text
    data = report.to_dict(details=True)
    assert json.loads(json.dumps(data)) == data and len(data["generation"]["prompts"]) == 6
    with pytest.raises(InputError):
        EvalOptions(generation=False, understanding=False).check()
    with pytest.raises(InputError):
        EvalOptions(images_per_prompt=0).check()
    oracle = OracleJanus()
    report = evaluate(oracle, EvalOptions(prompts_per_category=1, images_per_prompt=1, understanding=False, cfg_weight=1.5))
    assert report.generation.cfg_weight == 1.5 and all(o.cfg_weight == 1.5 for _, o in oracle.calls)
    assert "cfg 1.5" in format_report(report)
    oracle = OracleJanus()
    report = evaluate(oracle, EvalOptions(prompts_per_category=1, images_per_prompt=2, understanding=False, temperature=0.2))
    assert report.generation.temperature == 0.2 and all(o.temperature == 0.2 for _, o in oracle.calls)
    assert "temperature 0.2" in format_report(report) and "diversity" in format_report(report)
    assert report.generation.diversity == pytest.approx(np.mean([o.diversity for o in report.generation.outcomes]))
    with pytest.raises(InputError, match="temperature"):
        EvalOptions(temperature=-1.0).check()
    oracle = OracleJanus()
    report = evaluate(oracle, EvalOptions(prompts_per_category=1, images_per_prompt=1, understanding=False, candidates=3))
    assert all(o.candidates == 3 for _, o in oracle.calls) and report.generation.candidates == 3
    assert "each the model's pick of 3 samples" in format_report(report) and report.to_dict()["generation"]["candidates"] == 3
    with pytest.raises(InputError, match="candidates"):
        EvalOptions(candidates=0).check()
    oracle = OracleJanus()  # no candidates given: the model's default, asked for explicitly and reported
    report = evaluate(oracle, EvalOptions(prompts_per_category=1, images_per_prompt=1, understanding=False))
    assert all(o.candidates == 5 for _, o in oracle.calls) and report.generation.candidates == 5


def test_word_probe_swaps_exactly_one_word_into_a_false_caption() -> None:
    """Every probe scene fits its caption, the swapped caption differs from it in one word of the
    probed class and no longer describes the scene, and the scenes are reproducible."""
    words = {"left / right": {"left", "right"}, "top / bottom": {"top", "bottom"}, "left of / right of": {"left", "right"},
             "above / below": {"above", "below"}, "color": {"red", "green", "blue", "yellow", "purple", "orange"},
             "shape": {"circle", "square", "triangle"}}
    words["color binding"] = words["color"]
    for name in PROBED_WORDS:
        triples = probe_scenes(name, 30)
        assert triples == probe_scenes(name, 30, EVAL_SEED) and triples != probe_scenes(name, 30, seed=1)
        category = "position" if name in ("left of / right of", "above / below") else None  # judges the relation
        for scene, caption, swapped in triples:
            image = render(scene)
            assert judge(parse_prompt(caption, category), image).correct
            assert not judge(parse_prompt(swapped, category), image).correct, (name, caption, swapped)
            changed = [(a, b) for a, b in zip(caption.split(), swapped.split()) if a != b]
            assert len(caption.split()) == len(swapped.split())
            if name == "color binding":  # the two colours exchanged, the shapes differ
                assert len(changed) == 2 and changed[0] == changed[1][::-1] and set(changed[0]) <= words[name]
                assert len({o.shape for o in scene.objects}) == 2
                continue
            assert len(changed) == 1 and set(changed[0]) <= words[name]
    with pytest.raises(InputError, match="unknown word class"):
        probe_scenes("size", 1)


def test_word_probe_tells_a_model_that_reads_the_prompt_from_one_that_does_not() -> None:
    options = EvalOptions(generation=False, understanding=False, word_probe=True, probe_scenes=8)
    report = evaluate(OracleJanus(), options)
    assert report.generation is None and [w.name for w in report.word_probe] == list(PROBED_WORDS)
    assert all(w.scenes == 8 and w.prefers == 1.0 and w.gap == 1.0 for w in report.word_probe)
    data = report.to_dict()["word_probe"]
    assert set(data) == set(PROBED_WORDS) and data["color"]["gap"] == 1.0
    assert "left of / right of" in format_report(report)
    blind = evaluate(OracleJanus(broken=True), options)
    assert all(w.prefers == 0.0 and w.gap == 0.0 for w in blind.word_probe)
    with pytest.raises(InputError, match="nothing to evaluate"):
        EvalOptions(generation=False, understanding=False).check()


def check_report(data: dict, images: int, questions: int) -> None:
    assert data["seed"] == EVAL_SEED
    g, u = data["generation"], data["understanding"]
    assert set(g["categories"]) == set(CATEGORIES) and set(u["types"]) == set(QUESTION_TYPES)
    for s in g["categories"].values():
        assert 0 <= s["score"] <= 1 and s["images"] == images
    for s in u["types"].values():
        assert 0 <= s["accuracy"] <= 1 and s["questions"] == questions
    assert 0 <= g["overall"] <= 1 and 0 <= u["overall"] <= 1


def test_tiny_random_model_end_to_end(tiny_janus, one_thread) -> None:  # noqa: ANN001
    # Its images are 32 px (judged after NEAREST resizing to 64); its encoder reads 32 px too.
    report = evaluate(tiny_janus, EvalOptions(prompts_per_category=1, images_per_prompt=2, questions_per_type=1))
    assert isinstance(report, ShapesEvalReport)
    assert report.generation.native_size == 32
    assert all(len(o.correct) == 2 for o in report.generation.outcomes)
    check_report(report.to_dict(), images=2, questions=1)
    assert "judged at 64 px from 32 px" in format_report(report)
    assert 0 < report.generation.diversity <= 1  # random weights at temperature 1: two different images


def test_cli_json(tiny_checkpoint: Path, capsys: pytest.CaptureFixture, one_thread: None) -> None:
    from januspro.cli import main

    rc = main(["eval", "shapes", "--model", str(tiny_checkpoint), "--device", "cpu", "--prompts", "1",
               "--images-per-prompt", "1", "--questions", "2", "--json", "--quiet", "--word-probe", "--probe-scenes", "2",
               "--vision-probe", "--vision-probe-scenes", "20", "10", "--binding-probe", "--binding-probe-scenes", "3",
               "--candidates", "2", "--judge-drawn"])
    out = capsys.readouterr().out
    assert rc == 0
    data = json.loads(out)
    check_report(data, images=1, questions=2)
    assert all(w["scenes"] == 2 and w["logprob"] < 0 for w in data["word_probe"].values())
    probe = data["vision_probe"]
    assert (probe["train_scenes"], probe["test_scenes"]) == (20, 10) and 0 <= probe["present_recall"] <= 1
    binding = data["binding_probe"]
    assert binding["scenes"] == 3 and all(0 <= v <= 1 for k, v in binding.items() if k != "scenes")
    drawn = data["generation"]["drawn"]
    assert set(drawn) == set(CATEGORIES) and all(d["samples"] == 2 and 0 <= d["samples_right"] <= 1 for d in drawn.values())


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from januspro.cli import main

    for bad in (["--prompts", "0"], ["--skip-generation", "--skip-understanding"], ["--cfg", "-1"],
                ["--probe-scenes", "0"], ["--vision-probe-scenes", "0", "5"], ["--vision-probe-scenes", "5"],
                ["--binding-probe-scenes", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", "shapes", *bad])
        assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["eval", "geneval"])
    capsys.readouterr()
    assert main(["eval", "shapes", "--model", str(tmp_path / "missing"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("januspro: error:") and "\n" not in err
    assert main(["eval", "shapes", "--judge-drawn", "--skip-generation", "--model", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert "needs the generation evaluation" in err and "\n" not in err


def test_vision_probe_reads_a_trained_vit_and_not_a_random_one(  # noqa: ANN001
        tiny_janus, bundled_janus, one_thread: None) -> None:
    """The probe's MLP finds the objects in the bundled ViT's features (trained on scenes) and
    nothing in a random tiny ViT's; it is deterministic and refuses empty counts."""
    from januspro.shapes.vit_probe import probe_vision, scene_labels
    from januspro.shapes.world import Obj, Scene

    labels = scene_labels(Scene((Obj("red", "circle", "small", 5, 30), Obj("blue", "square", "large", 35, 28))))
    assert labels.sum() == 2 and labels[0] == 1  # red circle is the first colour-shape label
    trained = probe_vision(bundled_janus, train_scenes=1500, test_scenes=300, epochs=8)
    assert trained.present_recall > 0.3 and trained.exact["single"] > 0.2 and trained.absent_specificity > 0.9
    assert set(trained.exact) == {"all", "single", "pair", "count"} and trained.test_scenes == 300
    random = probe_vision(tiny_janus, train_scenes=300, test_scenes=100, epochs=4)
    assert random.present_recall < 0.1 and random.exact["pair"] < 0.05
    assert probe_vision(tiny_janus, train_scenes=300, test_scenes=100, epochs=4) == random
    text = format_report(ShapesEvalReport("m", EVAL_SEED, None, None, vision_probe=trained))
    assert "vision probe" in text and f"objects there found {trained.present_recall:.3f}" in text
    with pytest.raises(ValueError):
        probe_vision(tiny_janus, train_scenes=0)


def test_binding_probe_asks_only_questions_that_take_binding() -> None:
    """Every probe question is about a pair scene and its right answer is the contract's (`language.answer`); each
    scene brings the relation that holds, its inverse and the two of the other axis; a colour (shape) question
    names a shape (colour) that only one object has, and the other object's colour (shape) differs."""
    from januspro.shapes.binding_probe import probe_questions

    items = probe_questions(30)
    assert items == probe_questions(30) and items != probe_questions(30, seed=4242)
    assert all(item.scene.kind == "pair" and answer(item.scene, item.question) == item.right for item in items)
    per_scene = Counter((id(item.scene), item.kind) for item in items)
    scenes = {id(item.scene) for item in items}
    assert len(scenes) == 30
    assert all((per_scene[(s, "held")], per_scene[(s, "inverse")], per_scene[(s, "other_axis")]) == (1, 1, 2)
               for s in scenes)
    attributes = [item for item in items if item.kind in ("color", "shape")]
    assert attributes and all(item.other and item.other != item.right for item in attributes)


class BindingBlindJanus(OracleJanus):
    """Knows what a scene holds but not which object has it: names the other object's colour or shape, and says
    yes to a relation's inverse."""

    def chat_batch(self, conversations: Sequence, options) -> list[SimpleNamespace]:  # noqa: ANN001
        from januspro.shapes.world import INVERSE, RELATIONS

        out = []
        for conversation in conversations:
            (message,) = conversation
            scene = scene_from_image(message.images[0])
            text = message.text
            if text.startswith("What color is the "):
                text = f"What color is the {next(o for o in scene.objects if o.shape not in text).shape}?"
            elif text.startswith("What shape is the "):
                text = f"What shape is the {next(o for o in scene.objects if o.color not in text).color} object?"
            elif text.startswith("Is the "):
                said = next(r for r in RELATIONS if f" {r} " in text)
                right = answer(scene, text)
                inverse_right = answer(scene, text.replace(f" {said} ", f" {INVERSE[said]} "))
                text = "yes" if "yes" in (right, inverse_right) else "no"
                out.append(SimpleNamespace(text=text, unverified=None))
                continue
            out.append(SimpleNamespace(text=answer(scene, text), unverified=None))
        return out


def test_binding_probe_tells_a_model_that_binds_from_one_that_does_not() -> None:
    from januspro.shapes.binding_probe import BindingProbe

    options = EvalOptions(generation=False, understanding=False, binding_probe=True, binding_probe_scenes=25)
    perfect = evaluate(OracleJanus(), options).binding_probe
    assert perfect == BindingProbe(25, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0)
    blind = evaluate(BindingBlindJanus(), options).binding_probe
    assert blind == BindingProbe(25, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0)
    broken = evaluate(OracleJanus(broken=True), options).binding_probe  # always "no"
    assert (broken.relation_held, broken.relation_inverse, broken.relation_other_axis) == (0.0, 1.0, 1.0)
    report = ShapesEvalReport("m", EVAL_SEED, None, None, binding_probe=blind)
    assert report.to_dict()["binding_probe"]["color_of_other"] == 1.0
    assert "colour of a shape: its own 0.000, the other object's 1.000" in format_report(report)
    with pytest.raises(InputError, match="binding_probe_scenes"):
        EvalOptions(binding_probe_scenes=0).check()
