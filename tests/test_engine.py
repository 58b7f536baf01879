"""The engine's public API on a tiny random checkpoint: understanding (single, batched, streamed,
multi-turn), generation (determinism, chunking, fast paths), processing and input errors."""

from __future__ import annotations

import io
import itertools
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import januspro
from januspro import ChatOptions, ImageOptions, InputError, Message
from januspro.generation.image import generate_image_codes
from januspro.generation.sampling import SamplingParams
from januspro.generation.text import TextDecoder, decode_tokens
from januspro.processing.chat_format import JANUS, JANUS_PRO
from januspro.processing.image import ImageProcessor, load_image

GREEDY = ChatOptions(max_new_tokens=12)


def test_chat_stream_and_batch_agree(tiny_janus, rgb_image) -> None:
    single = tiny_janus.chat("Describe the image.", images=[rgb_image], options=GREEDY)
    assert len(single.tokens) == 12 and single.finish_reason == "length" and single.prompt_tokens > 16
    pieces = list(tiny_janus.stream_chat("Describe the image.", images=[rgb_image], options=GREEDY))
    assert "".join(pieces) == single.text and all(pieces)  # exactly the answer: no leading or trailing space
    # A left-padded batch of different lengths answers each conversation as it is answered alone.
    other = [Message("user", "How many shapes are there in this picture?", (rgb_image, rgb_image))]
    text_only = [Message("user", "Hello")]
    batch = tiny_janus.chat_batch([[Message("user", "Describe the image.", (rgb_image,))], other, text_only], GREEDY)
    assert batch[0].tokens == single.tokens
    assert batch[1].tokens == tiny_janus.chat(other, options=GREEDY).tokens
    assert batch[2].tokens == tiny_janus.chat(text_only, options=GREEDY).tokens


def test_a_stream_holds_back_what_later_tokens_may_change() -> None:
    from januspro.engine import answer_text

    cue = "<|User|>:"
    grown = ["", " ", " a red", " a red circle ", " a red circle\n\n<|Us", " a red circle\n\n<|User|>", " a red circle\n\n<|User|>: hi"]
    settled = [answer_text(text, cue) for text in grown]
    assert settled == ["", "", "a red", "a red circle", "a red circle", "a red circle", "a red circle"]
    # each is a beginning of the next, so the pieces of a stream never need taking back
    assert all(b.startswith(a) for a, b in itertools.pairwise(settled))
    assert answer_text(" a <|Usx", cue) == "a <|Usx" and answer_text("x <", cue) == "x"
    assert answer_text(" a red circle <", cue, finished=True) == "a red circle <"  # a finished answer holds nothing back


def test_a_stream_waits_for_characters_split_across_tokens(tiny_janus, rgb_image, monkeypatch) -> None:
    """Byte-level BPE can split a character across tokens; decoded so far it ends in U+FFFD, which is never streamed."""
    single = tiny_janus.chat("Describe the image.", images=[rgb_image], options=GREEDY)
    tokenizer = tiny_janus.processor.tokenizer
    decode = tokenizer.decode
    monkeypatch.setattr(tokenizer, "decode", lambda ids: decode(ids) + ("\ufffd" if len(ids) % 2 and len(ids) < 12 else ""))
    pieces = list(tiny_janus.stream_chat("Describe the image.", images=[rgb_image], options=GREEDY))
    assert "".join(pieces) == single.text  # a streamed U+FFFD would stay in the join, the next tokens replacing it


def test_sampling_is_seeded(tiny_janus) -> None:
    options = ChatOptions(max_new_tokens=16, temperature=1.0, top_p=0.95)
    a = tiny_janus.chat("Hello", options=options).tokens
    assert tiny_janus.chat("Hello", options=options).tokens == a
    b = tiny_janus.chat("Hello", options=ChatOptions(max_new_tokens=16, temperature=1.0, top_p=0.95, seed=1)).tokens
    assert a != b
    # Batched with other requests, a request with its own seed draws what it draws alone.
    rows = tiny_janus.chat_batch([[Message("user", "Hi there")], [Message("user", "Hello")]], options, seeds=[5, 0])
    assert rows[1].tokens == a


def test_session_keeps_the_cache_and_encodes_each_image_once(tiny_janus, rgb_image, monkeypatch) -> None:
    calls = []
    encode = tiny_janus.model.encode_images
    monkeypatch.setattr(tiny_janus.model, "encode_images", lambda pixels: calls.append(pixels.shape[0]) or encode(pixels))
    session = tiny_janus.session(ChatOptions(max_new_tokens=6))
    first = session.ask("Describe the image.", images=[rgb_image])
    assert first == tiny_janus.chat("Describe the image.", images=[rgb_image], options=ChatOptions(max_new_tokens=6))
    calls.clear()
    second = session.ask("And the colors?")
    assert calls == []  # the image stays in the KV cache
    # The second turn only costs its own tokens (the end of the last answer and the new turn).
    turn = tiny_janus.processor.continuation(Message("user", "And the colors?")).ids
    tail = 1 if first.finish_reason == "stop" else 2  # the last answer token, and EOS if it was cut off
    assert second.prompt_tokens == len(turn) + tail < first.prompt_tokens
    third = session.ask("Compare with this one.", images=[rgb_image.rotate(90)])
    assert calls == [1] and len(third.tokens) == 6
    assert [m.role for m in session.history] == ["user", "assistant"] * 3
    session.reset()
    assert session.history == [] and session.last_result is None


def test_session_grows_past_its_first_allocation(tiny_janus) -> None:
    session = tiny_janus.session(ChatOptions(max_new_tokens=40, temperature=1.0))
    for turn in range(5):
        session.ask(f"Tell me more about turn {turn}.")
    assert len(session.history) == 10


def test_image_generation_is_deterministic_and_chunking_changes_nothing(tiny_janus) -> None:
    options = ImageOptions(n=5, seed=3, cfg_weight=4.0)
    result = tiny_janus.generate_images("a red circle", options)
    size = tiny_janus.config.gen_vision.image_size
    assert len(result.images) == 5 and all(im.size == (size, size) and im.mode == "RGB" for im in result.images)
    again = tiny_janus.generate_images("a red circle", options)
    assert torch.equal(result.codes, again.codes)
    assert [np.asarray(im).tobytes() for im in result.images] == [np.asarray(im).tobytes() for im in again.images]
    # The first images of a larger request are the images of a smaller one.
    assert torch.equal(tiny_janus.generate_images("a red circle", ImageOptions(n=2, seed=3, cfg_weight=4.0)).codes, result.codes[:2])
    other = tiny_janus.generate_images("a red circle", ImageOptions(n=5, seed=4, cfg_weight=4.0))
    assert not torch.equal(other.codes, result.codes)
    ids = tiny_janus.processor.generation_prompt("a red circle")
    pad = tiny_janus.processor.tokenizer.special.pad
    for pad_chunks in (False, True):  # chunks at their own size, and padded to the request's rows
        chunked = generate_image_codes(tiny_janus.model, ids, pad, n=5, cfg_weight=4.0, params=SamplingParams(1.0),
                                       seed=3, chunk_size=2, pad_chunks=pad_chunks)
        assert torch.equal(chunked, result.codes)
    for mode in ("eager", "static"):  # padded rows in both step implementations, with top-k
        plain = generate_image_codes(tiny_janus.model, ids, pad, n=3, cfg_weight=4.0, params=SamplingParams(1.0, top_k=9),
                                     seed=5, mode=mode)
        padded = generate_image_codes(tiny_janus.model, ids, pad, n=3, cfg_weight=4.0, params=SamplingParams(1.0, top_k=9),
                                      seed=5, mode=mode, chunk_size=2, pad_chunks=True)
        assert torch.equal(plain, padded), mode
    tight = ImageOptions(n=5, seed=3, cfg_weight=4.0, memory_budget_gb=(tiny_janus._weight_bytes() + 200_000) / 2**30)
    planned = tiny_janus.generate_images("a red circle", tight)
    assert planned.chunk_size < 5 and torch.equal(planned.codes, result.codes)


def test_ranked_generation_keeps_the_samples_the_model_describes_best(tiny_janus) -> None:
    """candidates = K draws n x K images (the same as asking for n x K) and returns the n with the
    highest description scores, best first; each score is log P(prompt | image) under the describe
    question, which the KV-cached text decoder, fed the answer token by token, reproduces."""
    prompt = "a red circle"
    ranked = tiny_janus.generate_images(prompt, ImageOptions(n=2, seed=3, cfg_weight=4.0, candidates=3))
    drawn = tiny_janus.generate_images(prompt, ImageOptions(n=6, seed=3, cfg_weight=4.0))
    scores = tiny_janus.description_scores(drawn.images, prompt)
    assert scores.shape == (6,) and len(set(scores.tolist())) == 6  # the random model tells them apart
    best = torch.argsort(scores, descending=True)[:2]
    assert torch.equal(ranked.codes, drawn.codes[best]) and len(ranked.images) == 2
    assert list(ranked.scores) == pytest.approx(scores[best].tolist()) and ranked.scores[0] >= ranked.scores[1]
    assert drawn.scores == ()
    torch.testing.assert_close(tiny_janus.description_scores(drawn.images, prompt, batch_size=4), scores)
    # keep_drawn: the same images, plus every sample drawn and which of them were kept.
    kept = tiny_janus.generate_images(prompt, ImageOptions(n=2, seed=3, cfg_weight=4.0, candidates=3, keep_drawn=True))
    assert torch.equal(kept.codes, ranked.codes) and kept.picked == tuple(best.tolist()) and len(kept.drawn) == 6
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(kept.drawn, drawn.images))
    assert all(np.array_equal(np.asarray(kept.drawn[i]), np.asarray(image)) for i, image in zip(kept.picked, kept.images))
    assert ranked.drawn == [] and ranked.picked == ()  # off by default: the samples left out are not kept
    plain = tiny_janus.generate_images(prompt, ImageOptions(n=2, seed=3, cfg_weight=4.0, keep_drawn=True))
    assert plain.picked == (0, 1) and len(plain.drawn) == 2

    processor, model = tiny_janus.processor, tiny_janus.model
    question = Message("user", "<image_placeholder>\nDescribe the image.", (drawn.images[4],))
    batch = processor.batch([processor.conversation([question])])
    answer = processor.answer_ids(prompt)
    decoder = TextDecoder(model, 1, batch.input_ids.shape[1] + len(answer))
    logits = decoder.extend(tiny_janus.prompt_embeds(batch.input_ids, batch.image_mask, batch.pixel_values))
    total = 0.0
    for token in answer:
        total += float(logits.float().log_softmax(-1)[0, token])
        logits = decoder.step(torch.tensor([token]))
    assert total == pytest.approx(float(scores[4]), abs=1e-3)


def test_a_caption_grammar_ranks_by_the_captions_a_prompt_stands_for(tiny_janus) -> None:
    """description_scores of several texts is the log of the sum of their probabilities. A checkpoint whose
    processor names the shapes-world caption grammar ranks its samples by the captions the prompt stands for
    (a pair named in reverse: its one canonical caption), not by the prompt's own wording; prompts outside the
    grammar, and checkpoints without one, rank by the prompt itself."""
    import januspro.scoring as scoring

    processor = tiny_janus.processor
    prompt = "an image of a blue square to the right of a red circle"
    caption = "a red circle to the left of a blue square"
    drawn = tiny_janus.generate_images(prompt, ImageOptions(n=4, seed=3, cfg_weight=4.0))
    texts = [caption, "a red circle", prompt]
    each = torch.stack([tiny_janus.description_scores(drawn.images, text) for text in texts])  # [3, 4]
    torch.testing.assert_close(tiny_janus.description_scores(drawn.images, texts, batch_size=3), torch.logsumexp(each, 0))
    assert processor.ranking_descriptions(prompt) == (prompt,)  # this checkpoint names no grammar
    processor.caption_grammar = "shapes-world"
    try:
        assert processor.ranking_descriptions(prompt) == (caption,)
        assert len(processor.ranking_descriptions("a red circle")) == 18  # 2 sizes x 9 positions
        assert processor.ranking_descriptions("a cat on a mat") == ("a cat on a mat",)
        ranked = tiny_janus.generate_images(prompt, ImageOptions(n=2, seed=3, cfg_weight=4.0, candidates=2))
        (check,) = processor.ranking_split_checks(prompt)  # plus the relation's split check (below)
        total = each[0] + scoring.SPLIT_WEIGHT * scoring.split_scores(tiny_janus, drawn.images, check)
    finally:
        processor.caption_grammar = None
    best = torch.argsort(total, descending=True)[:2]
    assert torch.equal(ranked.codes, drawn.codes[best])
    assert list(ranked.scores) == pytest.approx(total[best].tolist(), abs=1e-4)
    assert not torch.allclose(each[0], each[2])  # (the prompt's own wording would score otherwise)
    with pytest.raises(InputError, match="empty"):
        tiny_janus.description_scores(drawn.images, [])


def test_description_scores_reuse_the_image_prefix_exactly(tiny_janus, monkeypatch) -> None:  # noqa: ANN001
    """The image-and-question prefix goes through the LLM once per chunk of images and the texts attend over
    its cache as a prefix tree (texts that begin alike share those tokens): the scores equal one plain causal
    forward of prefix + text per text, for texts of different lengths and shared beginnings, chunks that split
    the images unevenly, all texts in one forward, and texts in groups (a cache budget that holds part of the
    tree after the prefix) or one at a time."""
    import januspro.scoring as scoring
    from januspro.scoring import RANKING_QUESTION
    from januspro.generation.kv_cache import StaticKVCache
    from januspro.generation.text_tree import text_tree

    processor, model = tiny_janus.processor, tiny_janus.model
    images = tiny_janus.generate_images("a blue square", ImageOptions(n=3, seed=5, cfg_weight=4.0)).images
    texts = ["a red circle", "a red circle in the top left", "a blue square in the top left", "two", "a red square"]
    answers = [processor.answer_ids(t) for t in texts]
    assert len({len(a) for a in answers}) >= 3
    nodes = text_tree(answers).size
    assert nodes < sum(len(a) - 1 for a in answers)  # shared beginnings are fed once
    question = Message("user", f"<image_placeholder>\n{RANKING_QUESTION}", (images[0],))
    prompt = processor.conversation([question]).ids
    rows = torch.tensor(prompt).expand(len(images), -1)
    with torch.inference_mode():
        read = tiny_janus.prompt_embeds(rows, rows == processor.tokenizer.special.image,
                                         processor.pixel_values(images))  # [3, P, D]
        each = []
        for text in texts:
            answer = torch.tensor(processor.answer_ids(text)).expand(len(images), -1)  # [3, A]
            embeds = torch.cat([read, model.embed_tokens(answer)], dim=1)
            positions = torch.arange(embeds.shape[1]).expand(len(images), -1)
            hidden = model.hidden_states(embeds, positions)[:, len(prompt) - 1:-1]
            logprobs = model.text_logits(hidden).float().log_softmax(-1)
            each.append(logprobs.gather(-1, answer[..., None])[..., 0].sum(-1))
    expected = torch.logsumexp(torch.stack(each), dim=0)
    torch.testing.assert_close(tiny_janus.description_scores(images, texts), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tiny_janus.description_scores(images, texts, batch_size=2), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tiny_janus.description_scores(images, texts[1]), each[1], rtol=1e-5, atol=1e-5)
    slot = StaticKVCache.bytes_needed(tiny_janus.config.language, len(images), 1,
                                      model.language_model.model.embed_tokens.weight.dtype)
    for budget in (slot * (len(prompt) + nodes // 2), 1):  # groups of about half the tree; one text at a time
        monkeypatch.setattr(scoring, "SCORING_CACHE_BYTES", budget)
        torch.testing.assert_close(tiny_janus.description_scores(images, texts), expected, rtol=1e-5, atol=1e-5)


def test_a_text_tree_feeds_each_shared_beginning_once() -> None:
    """The prefix tree of token lists: one node per distinct fed prefix (each list but its last token), parents
    before children, each node seeing itself and its ancestors only, its depth its index in its list, and for
    every list token after the first the node that predicts it; groups of consecutive lists within a node
    budget."""
    import itertools

    from januspro.generation.text_tree import group_answers, text_tree

    answers = [[1, 2, 3, 4], [1, 2, 5], [1, 6, 9], [7], [1, 2, 3, 8]]
    tree = text_tree(answers)
    assert tree.tokens.tolist() == [1, 2, 3, 6]  # prefixes (1), (1 2), (1 2 3), (1 6); [7] feeds nothing
    assert tree.depth.tolist() == [0, 1, 2, 1]
    assert tree.visible.int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 1]]
    assert list(zip(tree.owners.tolist(), tree.nodes.tolist(), tree.targets.tolist())) == [
        (0, 0, 2), (0, 1, 3), (0, 2, 4), (1, 0, 2), (1, 1, 5), (2, 0, 6), (2, 3, 9), (4, 0, 2), (4, 1, 3), (4, 2, 8)]
    for answers_group in (answers, answers[:2]):
        groups = group_answers(answers_group, capacity=3)
        assert groups[0][0] == 0 and groups[-1][1] == len(answers_group)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(groups))  # consecutive, covering all
        assert all(text_tree(answers_group[g0:g1]).size <= 3 for g0, g1 in groups)
    assert group_answers(answers, capacity=3) == [(0, 2), (2, 4), (4, 5)]
    assert group_answers([[1, 2, 3, 4, 5], [1, 2]], capacity=2) == [(0, 1), (1, 2)]  # too long alone: its own group
    assert group_answers([], capacity=4) == [] and text_tree([]).size == 0


def test_a_checkpoint_default_of_candidates_ranks_calls_that_give_none(tiny_janus) -> None:
    """ImageOptions(candidates=None) draws the checkpoint's default number of samples per image (the same
    images as asking for it), lowered where n x it would pass max_images; 1 asks for plain sampling."""
    options = ImageOptions(n=2, seed=3, cfg_weight=4.0)
    plain = tiny_janus.generate_images("a red circle", options)
    tiny_janus.processor.candidates = 3
    try:
        ranked = tiny_janus.generate_images("a red circle", options)
        assert torch.equal(ranked.codes, tiny_janus.generate_images("a red circle", replace(options, candidates=3)).codes)
        assert len(ranked.scores) == 2
        assert torch.equal(tiny_janus.generate_images("a red circle", replace(options, candidates=1)).codes, plain.codes)
        capped = tiny_janus.generate_images("a red circle", replace(options, n=3, max_images=7))  # 3 x 2 <= 7 < 3 x 3
        assert torch.equal(capped.codes,
                           tiny_janus.generate_images("a red circle", replace(options, n=3, candidates=2)).codes)
    finally:
        tiny_janus.processor.candidates = 1
    assert plain.scores == ()


def test_split_checks_add_the_yes_odds_of_both_parts_of_each_split(  # noqa: ANN001
        tiny_janus, bundled_janus, monkeypatch) -> None:
    """A caption grammar's split checks (shapes world: one per relation) add to a sample's ranking score the log of
    the mean over `SPLIT_LINES` of P(yes | the part before the line, `before`) x P(yes | the part after it, `after`),
    each yes read against no from the first answer token (as a decoder reads it); `best_samples` reads them for
    its shortlist only, each check the best of it by the reads before it that `SPLIT_READS_PER_KEPT` parts per kept
    sample cover; a prompt without a relation or a count, or a checkpoint without the grammar, has none. On the bundled
    model, whose grammar is the shapes world's (a random one answers yes and no alike)."""
    import math

    import januspro.scoring as scoring
    from januspro.processing.image import image_part
    from januspro.processing.split_check import SplitCheck
    from januspro.shapes.world import render, sample_pair

    prompt = "a blue square to the right of a red circle"
    assert tiny_janus.processor.ranking_split_checks(prompt) == ()  # a checkpoint without the grammar
    janus = bundled_janus
    processor, model = janus.processor, janus.model
    rng = np.random.default_rng(4)
    pictures = [render(sample_pair(rng, ("red", "circle"), ("blue", "square"))) for _ in range(6)]

    def yes_scores(images: list, question: str, batch_size: int = 16) -> torch.Tensor:  # P(yes) against no
        return scoring.choice_scores(janus, images, question, ("yes", "no"), batch_size)[:, 0]

    # choice_scores: the first answer token's log-softmax over the choices' (`yes` and `no`), as a decoder reads it.
    question = "Is there a red circle?"
    asked = Message("user", f"<image_placeholder>\n{question}", (pictures[2],))
    batch = processor.batch([processor.conversation([asked])])
    decoder = TextDecoder(model, 1, batch.input_ids.shape[1] + 1)
    logits = decoder.extend(janus.prompt_embeds(batch.input_ids, batch.image_mask, batch.pixel_values))
    pair = logits.float()[0, [processor.answer_ids("yes")[0], processor.answer_ids("no")[0]]].log_softmax(-1)
    yes = yes_scores(pictures, question)
    assert yes.shape == (6,) and bool((yes > math.log(0.9)).all())  # every scene has one
    assert float(yes[2]) == pytest.approx(float(pair[0]), abs=1e-4)
    torch.testing.assert_close(yes_scores(pictures, question, batch_size=4), yes)
    assert bool((yes_scores(pictures, "Is there a green triangle?") < math.log(0.1)).all())

    # split_scores, by hand at two lines.
    monkeypatch.setattr(scoring, "SPLIT_LINES", (0.25, 0.5))
    check = SplitCheck(("x",), "Is there a red circle?", "Is there a blue square?")
    per_line = torch.stack([
        yes_scores([image_part(im, "x", line, True) for im in pictures], check.before)
        + yes_scores([image_part(im, "x", line, False) for im in pictures], check.after)
        for line in (16, 32)])  # [2, 6]: 64 px scenes
    split = scoring.split_scores(janus, pictures, check)
    torch.testing.assert_close(split, torch.logsumexp(per_line, 0) - math.log(2))
    assert scoring.split_scores(janus, [], check).shape == (0,)
    above = scoring.split_scores(janus, pictures, SplitCheck(("y",), check.before, check.after))
    assert not torch.allclose(split, above)  # the axis counts
    # Several axes and answer pairs: the mean over every line of the sum over the pairs.
    count = "How many shapes are there?"
    words = ("one", "two", "three")
    both = SplitCheck(("x", "y"), count, count, (("one", "one"), ("two", "one")), words)
    terms = []
    for axis in ("x", "y"):
        for line in (16, 32):
            before = scoring.choice_scores(janus, [image_part(im, axis, line, True) for im in pictures], count, words)
            after = scoring.choice_scores(janus, [image_part(im, axis, line, False) for im in pictures], count, words)
            terms.append(torch.logaddexp(before[:, 0] + after[:, 0], before[:, 1] + after[:, 0]))
    mean = torch.logsumexp(torch.stack(terms), 0) - math.log(4)
    torch.testing.assert_close(scoring.split_scores(janus, pictures, both), mean)
    torch.testing.assert_close(scoring.choice_scores(janus, pictures, count, words).exp().sum(1), torch.ones(6))
    assert (scoring.choice_scores(janus, pictures, count, words).argmax(1) == 1).all()  # two shapes in each
    alike = ("two", "two shapes")  # one first token: the whole answers decide
    torch.testing.assert_close(scoring.choice_scores(janus, pictures, count, alike),
                               scoring.answer_scores(janus, pictures, count, alike).log_softmax(-1))

    # The ranking: the mean of the shifted reads plus SPLIT_WEIGHT x the split score, the best of a shortlist kept.
    assert processor.ranking_split_checks(prompt) == (check,)
    assert processor.ranking_split_checks("a red circle") == ()
    assert processor.ranking_split_checks("two red circles")[0].before == count
    assert processor.ranking_split_checks("a cat to the left of a dog") == ()
    with monkeypatch.context() as without:
        without.setattr(processor, "ranking_split_checks", lambda _: ())
        reads = janus.ranking_scores(pictures, prompt)
    monkeypatch.setattr(scoring, "SPLIT_WEIGHT", 2.0)
    expected = reads + 2.0 * split
    torch.testing.assert_close(janus.ranking_scores(pictures, prompt), expected)
    monkeypatch.setattr(scoring, "SHORTLIST_PER_KEPT", 2)
    picked, scores = janus.best_samples(pictures, prompt, keep=2)
    first = janus.description_scores(pictures, processor.ranking_descriptions(prompt))
    shortlist = torch.argsort(first, descending=True, stable=True)[:4]
    best = shortlist[torch.argsort(expected[shortlist], descending=True, stable=True)[:2]]
    assert torch.equal(picked, best)
    torch.testing.assert_close(scores, expected[best])
    # A check reads only as many of the shortlist, best by the reads before it, as SPLIT_READS_PER_KEPT x keep parts
    # cover (a count: 2 axes x 2 lines x 2 parts = 8 a sample; 20 for one kept: the best 2).
    counted = "two red circles"
    assert scoring.split_shortlist_size(4, 1, processor.ranking_split_checks(counted)[0]) == 4  # 40 // 8 = 5, of 4
    monkeypatch.setattr(scoring, "SPLIT_READS_PER_KEPT", 20)
    assert scoring.split_shortlist_size(4, 1, processor.ranking_split_checks(counted)[0]) == 2
    assert scoring.split_shortlist_size(4, 3, processor.ranking_split_checks(counted)[0]) == 4
    with monkeypatch.context() as without:
        without.setattr(processor, "ranking_split_checks", lambda _: ())
        reads = janus.ranking_scores(pictures, counted)
    first = janus.description_scores(pictures, processor.ranking_descriptions(counted))
    shortlist = torch.argsort(first, descending=True, stable=True)[:4]
    checked = shortlist[torch.argsort(reads[shortlist], descending=True, stable=True)[:2]]
    total = reads[checked] + 2.0 * scoring.split_scores(janus, [pictures[i] for i in checked.tolist()],
                                                         processor.ranking_split_checks(counted)[0])
    picked, scores = janus.best_samples(pictures, counted, keep=1)
    assert int(picked[0]) == int(checked[total.argmax()])
    assert float(scores[0]) == pytest.approx(float(total.max()), abs=1e-5)


def test_split_checks_tell_a_relation_from_its_inverse_on_the_bundled_model(bundled_janus) -> None:  # noqa: ANN001
    """On rendered pair scenes the bundled model's split score of the relation that holds beats that of its
    inverse on every scene (its answers to `Describe the image.` get the direction wrong about one time in three
    on such scenes: docs/bundled-model.md)."""
    from januspro.scoring import split_scores
    from januspro.shapes.language import INVERSE, split_checks
    from januspro.shapes.world import render, sample_pair

    janus = bundled_janus
    rng = np.random.default_rng(31)
    scenes = [sample_pair(rng) for _ in range(12)]
    right, inverse = [], []
    for scene in scenes:
        a, b = scene.ordered()
        picture = render(scene)
        for relation, out in ((scene.relation, right), (INVERSE[scene.relation], inverse)):
            (check,) = split_checks(f"a {a.color} {a.shape} {relation} a {b.color} {b.shape}")
            out.append(float(split_scores(janus, [picture], check)[0]))
    assert all(r > i for r, i in zip(right, inverse)), (right, inverse)


def test_a_ranking_shift_averages_the_scores_of_shifted_reads(tiny_janus, monkeypatch) -> None:  # noqa: ANN001
    """With `processor.ranking_shift` s > 0 each sample is scored as the mean of five reads: itself and itself
    shifted by s px left, right, up and down on white (cut where it leaves the canvas). The ranking keeps the best
    by that mean among the shortlist of the best by the plain read (`shortlist_size`: here all six, then three);
    s = 0 reads each sample once, as before."""
    from PIL import Image

    import januspro.scoring as scoring
    from januspro.processing.image import shifted_image

    prompt = "a red circle"
    options = ImageOptions(n=2, seed=3, cfg_weight=4.0, candidates=3)
    drawn = tiny_janus.generate_images(prompt, ImageOptions(n=6, seed=3, cfg_weight=4.0))
    moves = ((0, 0), (3, 0), (-3, 0), (0, 3), (0, -3))
    reads = torch.stack([tiny_janus.description_scores([shifted_image(im, dx, dy) for im in drawn.images], prompt)
                         for dx, dy in moves])  # [5, 6]
    mean = reads.mean(0)
    tiny_janus.processor.ranking_shift = 3
    try:
        ranked = tiny_janus.generate_images(prompt, options)
        torch.testing.assert_close(tiny_janus.ranking_scores(drawn.images, prompt), mean)
        arrays = [np.asarray(image) for image in drawn.images]  # any image source, as description_scores takes
        torch.testing.assert_close(tiny_janus.ranking_scores(arrays, prompt), mean)
        with pytest.raises(InputError, match="no such file"):
            tiny_janus.ranking_scores(["/nonexistent/sample.png"], prompt)
        assert scoring.shortlist_size(6, 2) == 6
        monkeypatch.setattr(scoring, "SHORTLIST_PER_KEPT", 1.5)
        assert scoring.shortlist_size(6, 2) == 3
        shortlist = torch.argsort(reads[0], descending=True, stable=True)[:3]  # by the plain read
        short_best = shortlist[torch.argsort(mean[shortlist], descending=True, stable=True)[:2]]
        narrowed = tiny_janus.generate_images(prompt, options)
        assert torch.equal(narrowed.codes, drawn.codes[short_best])
        assert list(narrowed.scores) == pytest.approx(mean[short_best].tolist(), abs=1e-5)
        picked, scores = tiny_janus.best_samples(drawn.images, prompt, keep=10)  # more than drawn: all, ranked
        assert torch.equal(picked, torch.argsort(mean, descending=True, stable=True))
        torch.testing.assert_close(scores, mean[picked])
        with pytest.raises(InputError, match="keep must be >= 1"):
            tiny_janus.best_samples(drawn.images, prompt, keep=0)
        monkeypatch.undo()
    finally:
        tiny_janus.processor.ranking_shift = 0
    best = torch.argsort(mean, descending=True, stable=True)[:2]
    assert torch.equal(ranked.codes, drawn.codes[best])
    assert list(ranked.scores) == pytest.approx(mean[best].tolist(), abs=1e-5)
    assert not torch.allclose(reads[0], mean)  # the shifted reads count
    torch.testing.assert_close(tiny_janus.ranking_scores(drawn.images, prompt), reads[0])  # shift 0: one read

    square = Image.new("RGB", (8, 8), (255, 255, 255))
    square.paste((200, 0, 0), (0, 0, 2, 2))  # a red 2 x 2 block in the top-left corner
    moved = np.asarray(shifted_image(square, 3, 1))
    assert (moved[1:3, 3:5] == (200, 0, 0)).all() and (moved[:1] == 255).all() and moved.shape == (8, 8, 3)
    assert (np.asarray(shifted_image(square, -1, 0))[0:2, 0:1] == (200, 0, 0)).all()  # cut at the left edge
    assert (np.asarray(shifted_image(square, -1, 0))[:, 1:] == 255).all()


def test_image_code_logprobs_are_the_training_loss_of_the_codes(tiny_janus) -> None:
    """image_code_logprobs(images, prompt) is minus the image-code loss that training computes for
    the same (prompt, image) sample, per image and whatever the batch size."""
    from januspro.processing.image import load_image, pil_to_pixels
    from januspro.training.data import Record, SequenceEncoder, collate
    from januspro.training.losses import JanusObjective

    prompt = "a red circle"
    drawn = tiny_janus.generate_images(prompt, ImageOptions(n=2, seed=5, cfg_weight=1.0, temperature=0.3))
    size = tiny_janus.config.gen_vision.image_size
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(2)]
    images = [*drawn.images, *noise]
    scores = tiny_janus.image_code_logprobs(images, prompt)
    assert scores.shape == (4,) and bool((scores < 0).all())
    torch.testing.assert_close(tiny_janus.image_code_logprobs(images, prompt, batch_size=3), scores)
    assert len(set(scores.tolist())) == 4
    model, processor = tiny_janus.model, tiny_janus.processor
    special = processor.tokenizer.special
    encoder = SequenceEncoder(processor, "", True)
    for image, score in zip(images, scores):
        with torch.no_grad():
            codes = model.gen_vision_model.encode(pil_to_pixels([load_image(image)], size)).codes[0].tolist()
            batch = collate([encoder.t2i(Record(kind="t2i", prompt=prompt), codes, False)], special.pad, special.image,
                            lambda paths: torch.zeros(0, 3, size, size))
            _, image_sum = JanusObjective(model)(batch)
        assert float(-image_sum / batch.image_tokens) == pytest.approx(float(score), abs=1e-4)
    with pytest.raises(InputError, match="empty"):
        tiny_janus.image_code_logprobs(images, " ")


@pytest.mark.parametrize("params", [SamplingParams(1.0), SamplingParams(0.7, top_k=5, top_p=0.8), SamplingParams(0.0)])
def test_static_decode_steps_draw_the_same_tokens_as_eager(tiny_janus, params) -> None:
    model, processor = tiny_janus.model, tiny_janus.processor
    ids = processor.generation_prompt("a blue square")
    pad = processor.tokenizer.special.pad
    eager = generate_image_codes(model, ids, pad, n=3, cfg_weight=5.0, params=params, seed=1, mode="eager")
    static = generate_image_codes(model, ids, pad, n=3, cfg_weight=5.0, params=params, seed=1, mode="static", chunk_size=2)
    assert torch.equal(eager, static)
    long, short = processor.tokenizer.encode("Hello there, how are you?"), processor.tokenizer.encode("Hi")
    prompt = torch.tensor([long, [pad] * (len(long) - len(short)) + short])  # left-padded
    mask = prompt != pad
    outputs = []
    for mode in ("eager", "static"):
        decoder = TextDecoder(model, 2, prompt.shape[1] + 4, mode=mode)  # too small: grows mid-way
        logits = decoder.extend(model.embed_tokens(prompt), mask)
        outputs.append(list(decode_tokens(decoder, logits, params, [0, 1], 10, [])))
    assert outputs[0] == outputs[1]


def test_bucketed_attention_lengths_draw_the_eager_codes(tiny_checkpoint, monkeypatch) -> None:
    """The static step attends over the filled slots rounded up to ATTENTION_BUCKET (made 4
    here, so that a short request crosses several buckets) and draws the eager path's codes."""
    from januspro.generation import image

    monkeypatch.setattr(image, "ATTENTION_BUCKET", 4)
    monkeypatch.setattr(image, "BUCKET_MIN_KV_SHARE", 0.0)
    janus = januspro.load(tiny_checkpoint, device="cpu")
    ids = janus.processor.generation_prompt("a red circle")
    pad = janus.processor.tokenizer.special.pad
    params = SamplingParams(1.0, top_k=20)
    eager = generate_image_codes(janus.model, ids, pad, n=3, cfg_weight=5.0, params=params, seed=1, mode="eager")
    static = generate_image_codes(janus.model, ids, pad, n=3, cfg_weight=5.0, params=params, seed=1, mode="static")
    assert torch.equal(eager, static)
    prompt_len, tokens = len(ids), janus.config.num_gen_tokens
    capacity = prompt_len + tokens
    lengths = image.attention_lengths(prompt_len, tokens, capacity, bucketed=True)
    assert len(lengths) == tokens - 1 and lengths == sorted(lengths) and lengths[-1] == capacity
    assert all(prompt_len + i <= n <= prompt_len + i + 3 or n == capacity for i, n in enumerate(lengths, start=1))
    assert len(set(lengths)) > 2 and image.attention_lengths(prompt_len, tokens, capacity, bucketed=False) == [capacity] * (tokens - 1)


@pytest.mark.gpu
def test_cuda_graph_paths_match_eager_on_gpu(tiny_checkpoint) -> None:
    janus = januspro.load(tiny_checkpoint, device="cuda", dtype="float32")
    ids = janus.processor.generation_prompt("a red circle")
    pad = janus.processor.tokenizer.special.pad
    params = SamplingParams(1.0, top_k=20)
    eager = generate_image_codes(janus.model, ids, pad, n=4, cfg_weight=5.0, params=params, seed=2, mode="eager")
    graph = generate_image_codes(janus.model, ids, pad, n=4, cfg_weight=5.0, params=params, seed=2, mode="cuda_graph")
    compiled = generate_image_codes(janus.model, ids, pad, n=4, cfg_weight=5.0, params=params, seed=2, mode="cuda_graph",
                                    compile_step=True)
    assert torch.equal(eager, graph) and torch.equal(eager, compiled)
    prompt = torch.tensor([janus.processor.tokenizer.encode("Hello there")], device="cuda")
    outputs = []
    for mode, compile_step in (("eager", False), ("cuda_graph", False), ("cuda_graph", True)):
        decoder = TextDecoder(janus.model, 1, prompt.shape[1] + 4, mode=mode, compile=compile_step)
        logits = decoder.extend(janus.model.embed_tokens(prompt))
        outputs.append(list(decode_tokens(decoder, logits, params, [0], 10, [])))
    assert outputs[0] == outputs[1] == outputs[2]


def test_invalid_options_and_inputs_are_clear_errors(tiny_janus, rgb_image) -> None:
    with pytest.raises(InputError, match="n must be between 1"):
        tiny_janus.generate_images("x", ImageOptions(n=0))
    with pytest.raises(InputError, match="candidates must be >= 1"):
        tiny_janus.generate_images("x", ImageOptions(candidates=0))
    with pytest.raises(InputError, match="n x candidates at most 256"):
        tiny_janus.generate_images("x", ImageOptions(n=64, candidates=5))
    with pytest.raises(InputError, match="leaves nothing for generation"):
        tiny_janus.generate_images("x", ImageOptions(memory_budget_gb=1e-6))
    with pytest.raises(InputError, match="empty"):
        tiny_janus.description_scores([rgb_image], " ")
    with pytest.raises(InputError, match="temperature"):
        tiny_janus.chat("x", options=ChatOptions(temperature=-1))
    with pytest.raises(InputError, match="top_p"):
        tiny_janus.chat("x", options=ChatOptions(top_p=1.5, temperature=1))
    with pytest.raises(InputError, match="max_new_tokens"):
        tiny_janus.chat("x", options=ChatOptions(max_new_tokens=0))
    with pytest.raises(InputError, match="empty"):
        tiny_janus.generate_images("   ")
    with pytest.raises(InputError, match="longer than the model's context"):
        tiny_janus.chat("word " * 2000)
    with pytest.raises(InputError, match="longer than the model's context"):
        tiny_janus.generate_images("word " * 500)
    with pytest.raises(InputError, match="2 image placeholders but has 1 images"):
        tiny_janus.chat([Message("user", "<image_placeholder> and <image_placeholder>", (rgb_image,))])
    with pytest.raises(InputError, match="no such file"):
        tiny_janus.chat("x", images=["/no/such/image.png"])
    with pytest.raises(InputError, match="not a readable image"):
        tiny_janus.chat("x", images=[b"this is not an image"])


def test_load_image_accepts_paths_bytes_arrays_and_converts_modes(tmp_path, rgb_image) -> None:
    path = tmp_path / "a.png"
    rgb_image.save(path)
    buffer = io.BytesIO()
    rgb_image.convert("RGBA").save(buffer, format="PNG")
    for source in (path, str(path), buffer.getvalue(), np.asarray(rgb_image), rgb_image.convert("L")):
        image = load_image(source)
        assert image.mode == "RGB" and image.size == rgb_image.size
    (tmp_path / "truncated.png").write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="not a readable image"):
        load_image(tmp_path / "truncated.png")
    with pytest.raises(InputError, match="larger than"):
        load_image(Image.new("RGB", (100, 100)), max_pixels=5000)


def test_image_preprocessing_follows_the_original() -> None:
    processor = ImageProcessor(image_size=64, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5))
    wide = Image.new("RGB", (128, 64), (255, 0, 0))
    pixels = processor([wide])[0]  # [3, 64, 64]
    assert pixels.shape == (3, 64, 64)
    # Long side scaled to 64 (-> 64 x 32), centred, padded with the mean colour (127 -> ~0).
    assert torch.allclose(pixels[:, 32, 10], torch.tensor([1.0, -1.0, -1.0]), atol=0.02)
    assert torch.allclose(pixels[:, 2, 10], torch.full((3,), 127 / 127.5 - 1), atol=1e-3)
    assert processor.background == (127, 127, 127)


def test_chat_formats_render_like_the_original() -> None:
    messages = [Message("user", "<image_placeholder>\nWhat is it?", ("img",)), Message("assistant", "A cat."),
                Message("user", "And?")]
    assert JANUS_PRO.render(messages, system="Be brief.") == (
        "Be brief.\n\n<|User|>: <image_placeholder>\nWhat is it?\n\n<|Assistant|>: A cat.<｜end▁of▁sentence｜>"
        "<|User|>: And?\n\n<|Assistant|>:")
    assert JANUS.render([Message("user", "Hi")], system="") == "User: Hi\n\nAssistant:"
    assert Message("user", "Q", ("a", "b")).content() == "<image_placeholder>\n<image_placeholder>\nQ"


def test_prompt_ids_expand_each_image_placeholder(tiny_janus, rgb_image) -> None:
    processor = tiny_janus.processor
    special = processor.tokenizer.special
    prompt = processor.conversation([Message("user", "Compare.", (rgb_image, rgb_image))])
    ids = prompt.ids
    assert ids[0] == special.bos
    assert ids.count(special.image) == 2 * tiny_janus.config.num_image_tokens
    assert ids.count(special.boi) == 2 and ids.count(special.eoi) == 2
    start = ids.index(special.boi)
    assert ids[start + 1 + tiny_janus.config.num_image_tokens] == special.eoi
    generation = processor.generation_prompt("a red circle")
    assert generation[0] == special.bos and generation[-1] == special.boi
    assert processor.tokenizer.decode(generation, skip_special=False).endswith("<|Assistant|>:<begin_of_image>")


def test_int8_weight_only_quantization_keeps_logits_close(tiny_checkpoint) -> None:
    from januspro.quantize import Int8Linear

    full = januspro.load(tiny_checkpoint, device="cpu")
    int8 = januspro.load(tiny_checkpoint, device="cpu", quantize="int8")
    layers = int8.model.language_model.model.layers
    assert sum(isinstance(m, Int8Linear) for m in layers.modules()) == 7 * len(layers)
    assert layers[0].mlp.up_proj.weight.dtype == torch.int8
    ids = torch.tensor([full.processor.tokenizer.encode("a red circle to the left of a blue square")])
    positions = torch.arange(ids.shape[1])[None]
    with torch.inference_mode():
        a = full.model.hidden_states(full.model.embed_tokens(ids), positions)
        b = int8.model.hidden_states(int8.model.embed_tokens(ids), positions)
        for head in ("text_logits", "image_logits"):
            x, y = getattr(full.model, head)(a).flatten(), getattr(int8.model, head)(b).flatten()
            assert torch.nn.functional.cosine_similarity(x, y, dim=0) >= 0.99, head
    with pytest.raises(InputError, match="unknown quantization"):
        januspro.load(tiny_checkpoint, device="cpu", quantize="int4")


def test_int8_linear_fused_and_dequantized_paths_agree() -> None:
    """On CPU one row goes through the fused int8 kernel, many rows through dequantisation."""
    from januspro.quantize import CPU_MAX_FUSED_ROWS, Int8Linear

    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48, bias=True)
    layer = Int8Linear(linear)
    x = torch.randn(2, 3, 64)  # 6 rows > CPU_MAX_FUSED_ROWS
    assert x.numel() // 64 > CPU_MAX_FUSED_ROWS
    with torch.inference_mode():
        together = layer(x)
        row_by_row = torch.stack([torch.stack([layer(x[i, j : j + 1])[0] for j in range(3)]) for i in range(2)])
        expected = torch.nn.functional.linear(x, layer.dequantized(), linear.bias)
    torch.testing.assert_close(together, row_by_row, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(together, expected, rtol=1e-4, atol=1e-4)


def test_fused_projections_match_separate_ones_and_unfuse_for_training() -> None:
    """prepare_for_inference fuses q/k/v and gate/up on GPUs (and unpacked CPU models): same
    outputs, same state dict over the same memory, and undone before training. With grouped-query
    attention (2 key/value heads for 4 query heads), so that the split of the fused rows is tested."""
    from januspro.models.janus import JanusModel
    from januspro.testing import tiny_config

    torch.manual_seed(0)
    model = JanusModel(tiny_config(kv_heads=2))
    model.initialize_weights()
    llm = model.language_model.model
    ids = torch.tensor([[1, 5, 9, 14, 3, 7]])
    positions = torch.arange(ids.shape[1])[None]
    with torch.inference_mode():
        expected = model.hidden_states(model.embed_tokens(ids), positions)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    llm.fuse_weights()
    attn, mlp = llm.layers[0].self_attn, llm.layers[0].mlp
    assert attn.qkv_weight is not None and mlp.gate_up_weight is not None
    assert attn.k_proj.weight.data_ptr() == attn.qkv_weight[attn.q_proj.out_features :].data_ptr()  # views, no copy
    fused_state = model.state_dict()
    assert fused_state.keys() == state.keys() and all(torch.equal(fused_state[k], v) for k, v in state.items())
    with torch.inference_mode():
        torch.testing.assert_close(model.hidden_states(model.embed_tokens(ids), positions), expected)
        # the cached (decode) path too: prefill all but the last token, then one step
        cache = [(torch.zeros(1, attn.kv_heads, 8, attn.head_dim), torch.zeros(1, attn.kv_heads, 8, attn.head_dim))
                 for _ in llm.layers]
        model.hidden_states(model.embed_tokens(ids[:, :-1]), positions[:, :-1], None,
                            [(k[:, :, :5], v[:, :, :5]) for k, v in cache], torch.arange(5))
        mask = (torch.arange(6) <= 5)[None, None, None, :]
        last = model.hidden_states(model.embed_tokens(ids[:, -1:]), positions[:, -1:], mask,
                                   [(k[:, :, :6], v[:, :, :6]) for k, v in cache], torch.tensor([5]))
        torch.testing.assert_close(last[:, 0], expected[:, -1])
    llm.unfuse_weights()
    assert attn.qkv_weight is None and mlp.gate_up_weight is None
    assert attn.q_proj.weight.requires_grad and attn.q_proj.weight.is_contiguous()
    with torch.inference_mode():
        torch.testing.assert_close(model.hidden_states(model.embed_tokens(ids), positions), expected)


@pytest.mark.slow
@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                    reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_image_step_draws_the_eager_codes_and_compiles_once(tiny_checkpoint) -> None:
    """torch.compile'd decode step (`--compile`): same codes as eager, and one compiled graph
    for requests that differ in guidance, temperature and (within 64 slots) prompt length."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    janus = januspro.load(tiny_checkpoint, device="cpu", compile=True)
    pad = janus.processor.tokenizer.special.pad
    for prompt, cfg, temperature in (("a red circle", 5.0, 1.0), ("a blue square", 3.0, 0.8),
                                     ("two small green triangles", 2.0, 0.7)):
        ids = janus.processor.generation_prompt(prompt)
        params = SamplingParams(temperature)
        compiled = generate_image_codes(janus.model, ids, pad, n=2, cfg_weight=cfg, params=params, seed=1,
                                        mode="static", compile_step=True)
        eager = generate_image_codes(janus.model, ids, pad, n=2, cfg_weight=cfg, params=params, seed=1, mode="eager")
        assert torch.equal(compiled, eager), prompt
    assert counters["stats"]["unique_graphs"] == 1
