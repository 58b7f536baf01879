"""Checked answers (`ChatOptions.verify`): the shapes-world grammar's answer alternatives, the processor option,
the decoder's rewind, and on the bundled model the chat paths (single, batched, streamed, multi-turn) with the
check on and off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from januspro import ChatOptions, InputError, Message
from januspro.generation.text import TextDecoder
from januspro.processing.processor import JanusProcessor
from januspro.shapes.language import RELATIONS, answer_alternatives, checks_answer, split_checks
from januspro.shapes.world import render, sample_pair, sample_scene

GREEDY = ChatOptions(max_new_tokens=24)


def test_a_relation_question_has_yes_for_its_relation_and_no_for_the_three_others() -> None:
    question = "Is the red circle to the left of the blue square?"
    assert checks_answer(question) and checks_answer("  is the RED circle to the left of the blue square? ")
    alternatives = answer_alternatives(question, "no")
    assert [answer for answer, _ in alternatives] == ["yes", "no", "no", "no", "no"]
    for (answer, check), relation in zip(alternatives, RELATIONS):
        assert check == split_checks(f"a red circle {relation} a blue square")[0]
    assert alternatives[-1][1] is None  # `no` where no relation's check is likely (an object is not there)
    assert answer_alternatives(question, "yes") == alternatives  # the model's answer does not matter, the image does


def test_a_pair_caption_has_its_four_relations_and_other_answers_stand() -> None:
    describe = "Describe the image."
    assert checks_answer(describe) and checks_answer("describe the image")
    alternatives = answer_alternatives(describe, "a red circle to the left of a blue square.")
    assert [answer for answer, _ in alternatives] == [f"a red circle {r} a blue square" for r in RELATIONS] + [
        "a red circle to the left of a blue square."]  # the answer as it is where no check is likely
    assert alternatives[2][1] == split_checks("a red circle above a blue square")[0] and alternatives[-1][1] is None
    for question, answer in ((describe, "a small red circle in the center"), (describe, "two red circles"),
                             (describe, "something else"), ("What color is the circle?", "red"),
                             ("Is there a red circle?", "yes"), ("How many shapes are there?", "two")):
        assert answer_alternatives(question, answer) == ()
    assert not checks_answer("What color is the circle?") and not checks_answer("Is there a red circle?")
    # One object named twice: nothing to tell apart.
    assert answer_alternatives("Is the red circle above the red circle?", "no") == ()
    assert answer_alternatives(describe, "a red circle above a red circle") == ()


def test_only_the_relation_that_holds_has_its_objects_on_either_side_of_a_line() -> None:
    """Of the four alternatives of a rendered pair's relation question, only the one that holds can have a line
    (of `SPLIT_LINES`) with each named object wholly on its side, and on most scenes it has one (elsewhere the
    line cuts an object and the parts still tell the sides apart)."""
    from januspro.scoring import SPLIT_LINES
    from januspro.shapes.world import relations_between

    rng = np.random.default_rng(3)
    separated = 0
    for _ in range(60):
        scene = sample_pair(rng)
        a, b = scene.objects
        by_question = {f"Is there a {o.color} {o.shape}?": o for o in (a, b)}
        question = f"Is the {a.color} {a.shape} above the {b.color} {b.shape}?"
        holding = []
        for relation, (_, check) in zip(RELATIONS, answer_alternatives(question, "yes")):
            first, second = by_question[check.before], by_question[check.after]
            side = 0 if check.axes == ("x",) else 1
            lines = [round(f * 64) for f in SPLIT_LINES]
            if any(first.box[side + 2] < line <= second.box[side] for line in lines):
                holding.append(relation)
        assert holding in ([], [relations_between(a.center, b.center)[0]]), (scene, holding)
        separated += bool(holding)
    assert separated >= 30, separated


def test_verify_answers_is_a_checkpoint_option_that_needs_a_grammar(tiny_janus, tmp_path) -> None:  # noqa: ANN001
    processor = tiny_janus.processor
    assert processor.verify_answers is False and not processor.checks_answer("Describe the image.")
    assert processor.answer_alternatives("Describe the image.", "a red circle above a blue square") == ()
    with pytest.raises(InputError, match="caption_grammar"):
        JanusProcessor(processor.tokenizer, processor.image_processor, processor.chat_format,
                       processor.num_image_tokens, processor.max_length, verify_answers=True)
    with pytest.raises(InputError, match="true or false"):
        JanusProcessor(processor.tokenizer, processor.image_processor, processor.chat_format,
                       processor.num_image_tokens, processor.max_length, caption_grammar="shapes-world",
                       verify_answers="yes")  # type: ignore[arg-type]
    checked = JanusProcessor(processor.tokenizer, processor.image_processor, processor.chat_format,
                             processor.num_image_tokens, processor.max_length, caption_grammar="shapes-world",
                             verify_answers=True)
    checked.save(tmp_path)
    loaded = JanusProcessor.from_folder(tmp_path, tiny_janus.config)
    assert loaded.verify_answers is True and loaded.checks_answer("Describe the image.")
    processor.save(tmp_path)
    assert JanusProcessor.from_folder(tmp_path, tiny_janus.config).verify_answers is False


def test_a_rewound_decoder_continues_as_if_the_forgotten_tokens_were_never_fed(tiny_janus) -> None:  # noqa: ANN001
    model = tiny_janus.model
    embed = model.language_model.model.embed_tokens
    prompt, detour, then = torch.tensor([[5, 9, 14, 3]]), torch.tensor([[7, 8, 11]]), torch.tensor([[21, 4]])
    with torch.inference_mode():
        straight = TextDecoder(model, 1, 16)
        straight.extend(embed(prompt))
        expected = straight.extend(embed(then))
        rewound = TextDecoder(model, 1, 16)
        rewound.extend(embed(prompt))
        rewound.extend(embed(detour))
        rewound.step(torch.tensor([2]))
        rewound.rewind(4)
        assert rewound.length == 4 and int(rewound.next_pos) == 4
        torch.testing.assert_close(rewound.extend(embed(then)), expected)
        with pytest.raises(ValueError, match="rewind"):
            rewound.rewind(7)


def _corrected_relation_question(janus, seed: int = 5):  # noqa: ANN001, ANN202
    """A rendered pair scene and relation question whose answer the bundled model's check changes."""
    from januspro.shapes.language import question

    rng = np.random.default_rng(seed)
    for index in range(200):
        scene = sample_pair(rng)
        qa = question(scene, "relation", rng, yes=index % 2 == 0)
        picture = render(scene)
        if janus.chat(qa.question, [picture], GREEDY).unverified is not None:
            return picture, qa
    raise AssertionError("the model's own answers were all right")


def test_the_bundled_model_checks_its_relation_answers_and_describes_right(bundled_janus) -> None:  # noqa: ANN001
    """On rendered pair scenes (not the evaluation's seeds), the checked answers to relation questions and to
    `Describe the image.` are right more often than the model's own, and never wrong where its own were right
    more often than they are fixed; `verify=False` gives the model's own answers."""
    from januspro.shapes.language import normalize_answer, question

    janus = bundled_janus
    assert janus.processor.verify_answers
    rng = np.random.default_rng(17)
    conversations, expected = [], []
    for index in range(24):
        scene = sample_pair(rng)
        qa = question(scene, "relation", rng, yes=index % 2 == 0)
        conversations += [[Message("user", qa.question, (render(scene),))],
                          [Message("user", "Describe the image.", (render(scene),))]]
        expected += [qa.answer, scene.caption]
    checked = janus.chat_batch(conversations, GREEDY)
    own = janus.chat_batch(conversations, ChatOptions(max_new_tokens=24, verify=False))
    assert all(o.unverified is None for o in own)
    for c, o in zip(checked, own):
        assert (c.unverified or c.text) == o.text  # the check starts from the model's own answer
        assert (c.unverified is None) == (c.text == o.text)
        assert c.tokens == tuple(janus.processor.answer_ids(c.text)) or c.unverified is None
    right = [normalize_answer(c.text) == normalize_answer(e) for c, e in zip(checked, expected)]
    own_right = [normalize_answer(o.text) == normalize_answer(e) for o, e in zip(own, expected)]
    assert sum(right) >= len(right) - 2 and sum(right) > sum(own_right), (sum(right), sum(own_right))


def test_a_checked_answer_streams_whole_and_later_turns_follow_it(bundled_janus) -> None:  # noqa: ANN001
    """Where the check changes an answer in a session, the cache is rewound to the checked answer: the next turn
    is what a fresh chat over the whole conversation (with that answer) gives, token for token."""
    janus = bundled_janus
    picture, qa = _corrected_relation_question(janus)
    result = janus.chat(qa.question, [picture], GREEDY)
    assert result.text == qa.answer != result.unverified
    assert list(janus.stream_chat(qa.question, [picture], GREEDY)) == [result.text]
    session = janus.session(GREEDY)
    first = session.ask(qa.question, [picture])
    assert first.text == result.text and session.history[-1].text == result.text
    second = session.ask("How many shapes are there?")
    fresh = janus.chat([Message("user", qa.question, (picture,)), Message("assistant", result.text),
                        Message("user", "How many shapes are there?")], options=GREEDY)
    assert second.tokens == fresh.tokens and second.text == "two"
    unchecked = janus.session(ChatOptions(max_new_tokens=24, verify=False)).ask(qa.question, [picture])
    assert unchecked.text == result.unverified and unchecked.unverified is None


def test_a_relation_with_an_object_that_is_not_there_is_answered_no(bundled_janus) -> None:  # noqa: ANN001
    """Where one named object is missing, no relation's check is likely (`scoring.CHECK_FLOOR`), so the checked
    answer is `no`; the model's own answers say `yes` to such questions about a third of the time."""
    from januspro.shapes.world import COLORS, SHAPES, Scene

    rng = np.random.default_rng(11)
    answers, own = [], []
    for index in range(20):
        (obj,) = sample_scene(rng, "single").objects
        others = [(c, s) for c in COLORS for s in SHAPES if (c, s) != (obj.color, obj.shape)]
        color, shape = others[int(rng.integers(len(others)))]
        question = f"Is the {obj.color} {obj.shape} {RELATIONS[index % 4]} the {color} {shape}?"
        result = bundled_janus.chat(question, [render(Scene((obj,)))], GREEDY)
        answers.append(result.text)
        own.append(result.unverified or result.text)
    assert answers.count("no") >= 18 and answers.count("no") > own.count("no"), (answers, own)


def test_answers_about_several_images_or_none_are_not_checked(bundled_janus, monkeypatch) -> None:  # noqa: ANN001
    from januspro import scoring

    janus = bundled_janus
    calls: list[str] = []
    real = scoring.verified_answer
    monkeypatch.setattr(scoring, "verified_answer", lambda *args: calls.append(args[2]) or real(*args))
    rng = np.random.default_rng(8)
    one, two = render(sample_scene(rng, "pair")), render(sample_scene(rng, "pair"))
    janus.chat("Describe the image.", [one, two], GREEDY)
    janus.chat("Describe the image.", [], GREEDY)
    janus.chat("What color is the circle?", [one], GREEDY)
    assert calls == []
    janus.chat("Describe the image.", [one], GREEDY)
    assert calls == ["Describe the image."]


def test_the_chat_command_checks_answers_unless_told_not_to(bundled_janus, capsys, tmp_path) -> None:  # noqa: ANN001
    from januspro.cli import main

    picture, qa = _corrected_relation_question(bundled_janus)
    path = tmp_path / "scene.png"
    picture.save(path)
    own = bundled_janus.chat(qa.question, [picture], GREEDY).unverified
    for flags, expected in (((), qa.answer), (("--no-verify",), own)):
        assert main(["chat", "--image", str(path), "--device", "cpu", *flags, qa.question]) == 0
        assert capsys.readouterr().out.strip() == expected
