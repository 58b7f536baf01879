"""Scoring with the model's two halves, for ranking generated samples and for probes.

- `description_scores`: how likely the understanding half, asked to describe an image, answers a text
  (`answer_scores`: the same for any question and each text; `choice_scores`: a question's first answer token
  among a few choices).
- `ranking_scores` / `best_samples`: self-verified generation. A checkpoint whose processor names a caption
  grammar ranks its samples by the description scores of the captions a prompt stands for, optionally as the
  mean of several shifted reads (`processor.ranking_shift`), plus the grammar's split checks (`split_scores`:
  for a relation, whether each object is on its side of some line; for a count, how many shapes lie on each
  side), the further reads given to a shortlist.
- `image_code_logprobs`: how likely the generation half draws an image's VQ codes for a prompt.

Functions of a loaded `Janus` (whose methods of the same names call them).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import torch
from PIL import Image

from januspro.errors import InputError
from januspro.generation.kv_cache import StaticKVCache
from januspro.generation.text_tree import group_answers, text_tree
from januspro.processing.chat_format import Message
from januspro.processing.image import ImageSource, image_part, load_image, pil_to_pixels, shifted_image
from januspro.processing.split_check import SplitCheck

if TYPE_CHECKING:
    from januspro.engine import Janus

# What `description_scores` asks of each image (the shapes world's describe question).
RANKING_QUESTION = "Describe the image."
# At most this many bytes of KV cache for scoring several texts at once after one image prefix.
SCORING_CACHE_BYTES = 256 * 2**20
# The directions of the shifted reads of a ranked sample (`processor.ranking_shift`): right, left, down, up.
RANKING_MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1))
# The shifted reads go to the samples whose plain read ranks among the best SHORTLIST_PER_KEPT x kept ones
# (`shortlist_size`).
SHORTLIST_PER_KEPT = 4
# Where `split_scores` splits a sample: lines at these fractions of its side (16, 24, ..., 48 px on 64: two
# centres 12 px apart, the shapes world's least for a relation, have one between them; 4 px apart, 9 lines, rank
# no better and cost twice the reads).
SPLIT_LINES = (0.25, 0.375, 0.5, 0.625, 0.75)
# The weight of each split check's score beside the description score (`ranking_scores`).
SPLIT_WEIGHT = 1.0
# Parts a split check reads per kept sample in `best_samples`: it goes to as many of the best samples so far as
# that many reads cover (`split_shortlist_size`): for the bundled model's 4 images, 16 for a relation (one axis,
# 10 parts a sample), 8 for a count (two axes, 20 parts).
SPLIT_READS_PER_KEPT = 40
# An answer alternative without a split check scores log(CHECK_FLOOR) in `verified_answer`: it wins where no
# alternative's check is that likely. On the bundled model the likeliest relation's check scores log 0.77 (median;
# least -1.6) on rendered pair scenes, and log 0.0004 (median; most -0.34) where one named object is not there.
CHECK_FLOOR = 0.1


def shortlist_size(drawn: int, keep: int) -> int:
    """How many of `drawn` samples, ranked by one read, `best_samples` reads again to keep `keep`."""
    return min(drawn, max(keep, int(SHORTLIST_PER_KEPT * keep)))


def split_shortlist_size(shortlisted: int, keep: int, check: SplitCheck) -> int:
    """How many of the `shortlisted` samples, ranked by the reads so far, `best_samples` asks `check` to keep
    `keep`: `SPLIT_READS_PER_KEPT` x keep parts, two for each line of each axis of the check per sample."""
    per_sample = 2 * len(SPLIT_LINES) * len(check.axes)
    return min(shortlisted, max(keep, SPLIT_READS_PER_KEPT * keep // per_sample))


def ranking_scores(janus: Janus, images: Sequence[ImageSource], prompt: str) -> torch.Tensor:
    """[len(images)] how well the model's understanding finds that each image shows `prompt`: the
    `description_scores` of `processor.ranking_descriptions(prompt)`; with a `processor.ranking_shift` of s
    pixels, their mean over five reads of each image, as it is and shifted by s left, right, up and down (on
    white), so that one unlucky cut of a small object by the ViT's patch grid weighs less; plus
    `SPLIT_WEIGHT` x the `split_scores` of each of `processor.ranking_split_checks(prompt)`."""
    pictures = [load_image(image) for image in images]  # (paths, bytes and arrays too, as description_scores)
    texts, checks = janus.processor.ranking_descriptions(prompt), janus.processor.ranking_split_checks(prompt)
    return _second_reads(janus, pictures, texts, checks, description_scores(janus, pictures, texts))


def best_samples(janus: Janus, images: Sequence[ImageSource], prompt: str,
                 keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """([k] indices of the k = min(keep, len(images)) samples with the best `ranking_scores`, best first; [k]
    those scores). With a ranking shift or split checks, only a shortlist gets the further reads: every sample
    is read once, the `shortlist_size(len(images), keep)` best by that read get the shifted reads, and the
    `split_shortlist_size` best by those each split check (the samples left out hardly ever rank among the
    best: docs/bundled-model.md)."""
    if keep < 1:
        raise InputError(f"keep must be >= 1, got {keep}")
    texts, checks = janus.processor.ranking_descriptions(prompt), janus.processor.ranking_split_checks(prompt)
    pictures = [load_image(image) for image in images]
    first = description_scores(janus, pictures, texts)  # [n]
    keep = min(keep, len(pictures))
    if not janus.processor.ranking_shift and not checks:
        best = torch.argsort(first, descending=True, stable=True)[:keep]
        return best, first[best]
    shortlist = torch.argsort(first, descending=True, stable=True)[: shortlist_size(len(pictures), keep)]  # [m]
    shortlisted = [pictures[i] for i in shortlist.tolist()]
    scores = _second_reads(janus, shortlisted, texts, checks, first[shortlist], keep)  # [m]
    order = torch.argsort(scores, descending=True, stable=True)[:keep]
    return shortlist[order], scores[order]


def _second_reads(janus: Janus, pictures: Sequence[Image.Image], texts: Sequence[str], checks: Sequence[SplitCheck],
                  first: torch.Tensor, keep: int | None = None) -> torch.Tensor:
    """[len(pictures)] the ranking score of each picture from its plain description score `first` of `texts`: the
    mean with its shifted reads (`processor.ranking_shift`), plus the weighted split `checks`. With `keep`, each
    check reads only the `split_shortlist_size` best pictures so far, and the others score -inf."""
    shift = janus.processor.ranking_shift
    scores = mean_of_reads(janus, pictures, texts, first, shift) if shift else first
    for check in checks:
        size = len(pictures) if keep is None else split_shortlist_size(len(pictures), keep, check)
        top = torch.argsort(scores, descending=True, stable=True)[:size]  # [s]
        split = split_scores(janus, [pictures[i] for i in top.tolist()], check)  # [s]
        scores = torch.full_like(scores, float("-inf")).index_put_((top,), scores[top] + SPLIT_WEIGHT * split)
    return scores


def mean_of_reads(janus: Janus, pictures: Sequence[Image.Image], texts: Sequence[str], first: torch.Tensor,
                  shift: int) -> torch.Tensor:
    """[len(pictures)] the mean of each picture's plain read (`first`, its `description_scores`) and its reads
    shifted by `shift` px along each of `RANKING_MOVES`."""
    moved = [shifted_image(picture, dx * shift, dy * shift) for dx, dy in RANKING_MOVES for picture in pictures]
    reads = description_scores(janus, moved, texts).view(len(RANKING_MOVES), len(pictures))  # [4, n]
    return (first + reads.sum(0)) / (1 + len(RANKING_MOVES))


def split_scores(janus: Janus, pictures: Sequence[Image.Image], check: SplitCheck) -> torch.Tensor:
    """[len(pictures)] how likely the model finds that each picture shows `check` (`SplitCheck`): log of the mean,
    over lines across each of `check.axes` at the `SPLIT_LINES` fractions of the picture's side, of the
    probability that the part before the line (the rest painted white) answers `check.before` and the part after
    it `check.after` with one of `check.answers` (summed over those pairs; each answer read among `check.choices`
    by `choice_scores`). A relation's check asks each part what the model answers best, whether an object is
    there, and the line says where; a count's, how many shapes each part holds."""
    if not pictures:
        return torch.zeros(0)
    moves = [(axis, f) for axis in check.axes for f in SPLIT_LINES]  # [S] lines
    at = [[round(f * picture.size[0 if axis == "x" else 1]) for picture in pictures] for axis, f in moves]
    parts = {side: [image_part(picture, axis, at[s][i], side) for s, (axis, _) in enumerate(moves)
                    for i, picture in enumerate(pictures)] for side in (True, False)}
    before = choice_scores(janus, parts[True], check.before, check.choices).view(len(moves), len(pictures), -1)
    after = choice_scores(janus, parts[False], check.after, check.choices).view(len(moves), len(pictures), -1)
    index = {choice: k for k, choice in enumerate(check.choices)}
    pairs = torch.stack([before[..., index[b]] + after[..., index[a]] for b, a in check.answers])  # [A, S, n]
    return torch.logsumexp(pairs.flatten(0, 1), dim=0) - math.log(len(moves))


def description_scores(janus: Janus, images: Sequence[ImageSource], text: str | Sequence[str],
                       batch_size: int = 16) -> torch.Tensor:
    """[len(images)] log-probability that the model, asked to describe each image (`RANKING_QUESTION`, the
    default system prompt), answers `text`, or any one of several texts: log of the sum of their
    probabilities (each the product over its tokens). Higher: the model's understanding finds the text fits
    that image better. Ranks generated samples (`answer_scores` with the texts summed)."""
    texts = [text] if isinstance(text, str) else list(text)
    return torch.logsumexp(answer_scores(janus, images, RANKING_QUESTION, texts, batch_size), dim=1)


def _question_ids(janus: Janus, question: str, images: Sequence[ImageSource]) -> list[int]:
    """The prompt ids of `question` asked about an image (the default system prompt): the same for each of
    `images`, whose image tokens are a fixed number."""
    asked = Message("user", f"<image_placeholder>\n{question}", tuple(images[:1]))
    return janus.processor.conversation([asked]).ids


@torch.inference_mode()
def choice_scores(janus: Janus, images: Sequence[ImageSource], question: str, choices: Sequence[str],
                  batch_size: int = 16) -> torch.Tensor:
    """[len(images), len(choices)] log-probability that the model answers `question` about each image (the default
    system prompt) with each of `choices`, among them: the log-softmax of the first answer token over the
    choices' first tokens, one forward of image and question per image, no cache; where two choices begin with
    the same token, over the whole answers (`answer_scores`)."""
    model, processor, device = janus.model, janus.processor, janus.device
    firsts = [processor.answer_ids(choice)[0] for choice in choices]
    if len(set(firsts)) != len(firsts):
        return answer_scores(janus, images, question, choices, batch_size).log_softmax(-1)
    prompt = _question_ids(janus, question, images)
    processor.check_length(len(prompt) + 1)
    row = torch.tensor(prompt, device=device)
    positions = torch.arange(len(prompt), device=device)
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        rows = row.expand(len(chunk), -1)  # [b, P]
        read = janus.prompt_embeds(rows, rows == processor.tokenizer.special.image, processor.pixel_values(chunk))
        last = model.hidden_states(read, positions.expand(len(chunk), -1))[:, -1]  # [b, D]
        out.append(model.text_logits(last).float()[:, firsts].log_softmax(-1).cpu())  # [b, k]
    return torch.cat(out) if out else torch.zeros(0, len(firsts))


@torch.inference_mode()
def answer_scores(janus: Janus, images: Sequence[ImageSource], question: str, texts: Sequence[str],
                  batch_size: int = 16) -> torch.Tensor:
    """[len(images), len(texts)] log-probability that the model, asked `question` about each image (the default
    system prompt), answers each of `texts` (the product over its tokens and the end of the turn).

    Each chunk of images is read once: the image and question prefix goes through the LLM into a KV cache, and
    the texts then cost only their own tokens, each distinct prefix of them once: they go in one forward as one
    row per image, a prefix tree after the prefix (`generation.text_tree`), each token attending to the prefix
    and its own text's earlier tokens only, with the rotary position it would have alone (the 18 captions of a
    one-object prompt for the bundled model, about 10 tokens each and 40 as a tree, after a prefix of about
    30); in groups where the cache of them all would pass `SCORING_CACHE_BYTES`."""
    model, processor, device, dtype = janus.model, janus.processor, janus.device, janus.dtype
    texts = list(texts)
    if not texts or any(not t.strip() for t in texts):
        raise InputError("the text to score is empty")
    special = processor.tokenizer.special
    prompt = _question_ids(janus, question, images)
    answers = [processor.answer_ids(t) for t in texts]
    for answer in answers:
        processor.check_length(len(prompt) + len(answer))
    n_prompt = len(prompt)
    # Answer token 0 is predicted at the last prefix position, the others by the tree of fed tokens after it.
    first = torch.tensor([a[0] for a in answers], device=device)  # [n]
    # Texts per forward: as many as the tree of fed tokens after the prefix fits in the cache budget of the
    # largest chunk of images.
    rows_max = min(batch_size, max(1, len(images)))
    slot_bytes = StaticKVCache.bytes_needed(model.config.language, rows_max, 1, dtype)
    capacity = max(1, SCORING_CACHE_BYTES // slot_bytes - n_prompt)
    layouts = []  # per group of texts: (first text, last + 1, tree, slots [N], rotary positions [N], mask)
    for g0, g1 in group_answers(answers, capacity):
        tree = text_tree(answers[g0:g1], device)
        if tree.size:
            slots = torch.arange(n_prompt, n_prompt + tree.size, device=device)  # [N]
            # A fed token attends to the prefix and to its own ancestors in the tree.
            mask = torch.cat([tree.visible.new_ones(tree.size, n_prompt), tree.visible], dim=1)[None, None]
            layouts.append((g0, g1, tree, slots, n_prompt + tree.depth, mask))  # mask [1, 1, N, P+N]
    width = max((layout[2].size for layout in layouts), default=0)
    prompt_row = torch.tensor(prompt, device=device)
    prefix = torch.arange(n_prompt, device=device)
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        b = len(chunk)
        rows = prompt_row.expand(b, -1)  # [b, P]
        read = janus.prompt_embeds(rows, rows == special.image, processor.pixel_values(chunk))  # [b, P, D]
        cache = StaticKVCache(model.config.language, b, n_prompt + width, device, dtype)
        last = model.hidden_states(read, prefix.expand(b, -1), None, cache.layers(n_prompt), prefix)[:, -1]
        total = model.text_logits(last).float().log_softmax(-1)[:, first]  # [b, n]
        for g0, g1, tree, slots, positions, mask in layouts:
            tokens = tree.tokens.expand(b, -1)  # [b, N]
            hidden = model.hidden_states(model.embed_tokens(tokens), positions.expand(b, -1), mask,
                                         cache.layers(n_prompt + tree.size), slots)  # [b, N, D]
            logprobs = model.text_logits(hidden).float().log_softmax(-1)  # [b, N, vocab]
            picked = logprobs[:, tree.nodes, tree.targets]  # [b, E]
            total[:, g0:g1] += picked.new_zeros(b, g1 - g0).index_add_(1, tree.owners, picked)
        out.append(total.cpu())
    return torch.cat(out) if out else torch.zeros(0, len(texts))


@torch.no_grad()
def image_code_logprobs(janus: Janus, images: Sequence[ImageSource], prompt: str,
                        batch_size: int = 16) -> torch.Tensor:
    """[len(images)] mean log-probability per code that the model, generating for `prompt`
    (conditional row, no guidance, teacher-forced), draws each image's VQ codes. Higher: the
    image is likelier under the prompt. Comparing a prompt with the same prompt one word
    changed tells whether the model reads that word (ShapesEval's word probe)."""
    model, processor, device = janus.model, janus.processor, janus.device
    if not prompt.strip():
        raise InputError("the prompt to score is empty")
    ids = processor.generation_prompt(prompt)
    processor.check_length(len(ids), reserve=model.config.num_gen_tokens)
    vq = model.gen_vision_model
    size = model.config.gen_vision.image_size
    out = []
    for start in range(0, len(images), batch_size):
        pictures = [load_image(source) for source in images[start:start + batch_size]]
        pixels = pil_to_pixels(pictures, size).to(device, vq.quant_conv.weight.dtype)
        codes = vq.encode(pixels).codes  # [b, N]
        rows = torch.tensor(ids, device=device).expand(len(pictures), -1)  # [b, P]
        embeds = torch.cat([model.embed_tokens(rows), model.embed_image_codes(codes[:, :-1])], dim=1)
        positions = torch.arange(embeds.shape[1], device=device).expand(len(pictures), -1)
        hidden = model.hidden_states(embeds, positions)[:, len(ids) - 1:]  # [b, N, hidden]
        logprobs = model.image_logits(hidden).float().log_softmax(-1)  # [b, N, codebook]
        out.append(logprobs.gather(-1, codes[..., None])[..., 0].mean(-1).cpu())
    return torch.cat(out) if out else torch.zeros(0)


@torch.inference_mode()
def verified_answer(janus: Janus, image: ImageSource, question: str, answer: str) -> str:
    """The model's `answer` to `question` about one image, checked by the model itself: where the processor's
    caption grammar names the answers it might have meant (`JanusProcessor.answer_alternatives`: for the shapes
    world, a relation question's yes and no, a pair caption with each relation), the one whose split check the
    model finds likeliest in the image (`split_scores`); otherwise `answer` as it is. The same reads that rank
    generated samples: which side of a line each object is on, which the model answers far better than which
    way a relation points. An alternative without a check scores log(`CHECK_FLOOR`): it wins where no check is that
    likely (for the shapes world, a relation between two objects that are not both there)."""
    alternatives = janus.processor.answer_alternatives(question, answer)
    if not alternatives:
        return answer
    picture = load_image(image)
    floor = torch.tensor(math.log(CHECK_FLOOR))
    scores = torch.stack([floor if check is None else split_scores(janus, [picture], check)[0]
                          for _, check in alternatives])  # [A]
    return alternatives[int(scores.argmax())][0]
