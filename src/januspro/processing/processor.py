"""Conversation + images -> token ids, masks and pixel values; prompt -> generation prompt ids.

This is the only place that knows how text, images and special tokens are laid out in a Janus
prompt; the engine works on the tensors it produces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from januspro.config import JanusConfig
from januspro.errors import CheckpointError, InputError
from januspro.processing.chat_format import DEFAULT_SYSTEM_PROMPT, ChatFormat, Message, chat_format
from januspro.processing.image import ImageProcessor, load_image
from januspro.processing.split_check import SplitCheck
from januspro.processing.tokenizer import TextTokenizer

# Classifier-free guidance weight of image generation when a call gives none: the official repo's
# and transformers' 5 suits the official models; a checkpoint may name its own (`cfg_weight` in
# processor_config.json; the bundled shapes-world model's is lower).
DEFAULT_CFG_WEIGHT = 5.0
# Sampling temperature of the image codes when a call gives none: 1 as in the official repo; a checkpoint
# may name its own (`image_temperature` in processor_config.json; the bundled model draws better cooler).
DEFAULT_IMAGE_TEMPERATURE = 1.0


@dataclass(frozen=True)
class CaptionGrammar:
    """The form of a checkpoint's answers to `Describe the image.`, by which it ranks its own image samples:
    `captions` maps a prompt to the captions it stands for, `split_checks` to what its images show on either
    side of a line; each raises ValueError for a prompt outside the grammar. And by which it checks its own
    answers (`verify_answers`): `checks_answer` says whether an answer to a question may be checked (known before
    the answer is written), `answer_alternatives` maps a question and the model's answer to the answers it might
    have meant, each with the split check that holds where it is right, or None for the answer that holds where no
    check is likely (none at all: the answer stands)."""

    captions: Callable[[str], tuple[str, ...]]
    split_checks: Callable[[str], tuple[SplitCheck, ...]]
    checks_answer: Callable[[str], bool] = lambda question: False  # noqa: E731 (default: checks no answers)
    answer_alternatives: Callable[[str, str], tuple[tuple[str, SplitCheck | None], ...]] = lambda question, answer: ()


def _shapes_world(name: str) -> Callable[..., Any]:
    """`januspro.shapes.language.<name>`, imported on the first call (only for a model that names the grammar)."""

    def call(*args: str) -> Any:
        from januspro.shapes import language

        return getattr(language, name)(*args)

    return call


# Caption grammars a checkpoint may name (`caption_grammar` in processor_config.json), by name.
CAPTION_GRAMMARS: dict[str, CaptionGrammar] = {
    "shapes-world": CaptionGrammar(_shapes_world("captions_for_prompt"), _shapes_world("split_checks"),
                                   _shapes_world("checks_answer"), _shapes_world("answer_alternatives")),
}
# Samples drawn per returned image when a call gives none: 1 (no ranking) as in the official repo; a checkpoint may
# name its own (`candidates` in processor_config.json; the bundled model ranks 16, which costs it little).
DEFAULT_CANDIDATES = 1
# Pixels by which a ranked sample is also read shifted left, right, up and down (its score: the mean over the five
# reads); 0: read once. A checkpoint may name its own (`ranking_shift` in processor_config.json; meant for images on
# a white ground, which the shifted reads are filled with: the bundled model's is 4).
DEFAULT_RANKING_SHIFT = 0


def _is_non_negative(value: object) -> bool:
    """A finite number >= 0 (not a bool): the rule of both generation defaults."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf")


def _is_count(value: object, least: int = 1) -> bool:
    """An integer >= `least` (not a bool): the rule of the default number of candidates and of the ranking shift."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


@dataclass
class PromptIds:
    """One tokenised conversation: ids with image tokens expanded, and its images."""

    ids: list[int]
    images: list[object]
    text: str


@dataclass
class UnderstandingBatch:
    """Left-padded batch of understanding prompts."""

    input_ids: torch.Tensor  # [B, T] int64, padded on the left with the pad id
    attention_mask: torch.Tensor  # [B, T] bool, False on padding
    image_mask: torch.Tensor  # [B, T] bool, True where image features go
    pixel_values: torch.Tensor  # [M, 3, S, S] float32, images in order of appearance
    prompts: list[str]


class JanusProcessor:
    def __init__(
        self,
        tokenizer: TextTokenizer,
        image_processor: ImageProcessor,
        fmt: ChatFormat,
        num_image_tokens: int,
        max_length: int,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        cfg_weight: float = DEFAULT_CFG_WEIGHT,
        image_temperature: float = DEFAULT_IMAGE_TEMPERATURE,
        caption_grammar: str | None = None,
        candidates: int = DEFAULT_CANDIDATES,
        ranking_shift: int = DEFAULT_RANKING_SHIFT,
        verify_answers: bool = False,
    ) -> None:
        for name, value in (("cfg_weight", cfg_weight), ("image_temperature", image_temperature)):
            if not _is_non_negative(value):
                raise InputError(f"{name} must be a number >= 0, got {value!r}")
        if caption_grammar is not None and caption_grammar not in CAPTION_GRAMMARS:
            raise InputError(f"unknown caption_grammar {caption_grammar!r}; one of {', '.join(CAPTION_GRAMMARS)}")
        if not _is_count(candidates):
            raise InputError(f"candidates must be an integer >= 1, got {candidates!r}")
        if not _is_count(ranking_shift, least=0):
            raise InputError(f"ranking_shift must be an integer >= 0 (pixels), got {ranking_shift!r}")
        if not isinstance(verify_answers, bool):
            raise InputError(f"verify_answers must be true or false, got {verify_answers!r}")
        if verify_answers and caption_grammar is None:
            raise InputError("verify_answers needs a caption_grammar (which says how answers are checked)")
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_format = fmt
        self.num_image_tokens = num_image_tokens
        self.max_length = max_length
        self.system_prompt = system_prompt
        self.cfg_weight = float(cfg_weight)  # the checkpoint's default guidance for image generation
        self.image_temperature = float(image_temperature)  # and its default sampling temperature of image codes
        self.caption_grammar = caption_grammar  # how the model describes images, if it was taught one form
        self.candidates = int(candidates)  # and how many samples it draws per image by default, keeping its best
        self.ranking_shift = int(ranking_shift)  # and by how many pixels it also reads each sample shifted, ranking
        self.verify_answers = verify_answers  # whether it checks its answers about one image by default (`ChatOptions`)

    @classmethod
    def from_folder(
        cls, folder: Path, config: JanusConfig, format_name: str | None = None, name_hint: str = ""
    ) -> "JanusProcessor":
        """Read tokenizer, image preprocessing and chat format of a checkpoint folder.

        The chat format is, in order: `format_name`; `chat_format` in processor_config.json;
        Janus-1.3B's `User`/`Assistant` when the model name says Janus-1.3B; else Janus-Pro's."""
        processor_config: dict[str, object] = {}
        path = folder / "processor_config.json"
        if path.is_file():
            try:
                processor_config = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
        if format_name is None:
            named = processor_config.get("chat_format")
            if isinstance(named, str):
                format_name = named
            elif "janus-1.3b" in f"{name_hint} {folder}".lower():
                format_name = "janus"
            else:
                format_name = "janus-pro"
        num_tokens = processor_config.get("num_image_tokens", config.num_image_tokens)
        if num_tokens != config.num_image_tokens:
            raise CheckpointError(
                f"{path}: num_image_tokens {num_tokens} does not match the vision encoder's "
                f"{config.num_image_tokens} patches"
            )
        system = processor_config.get("system_prompt", DEFAULT_SYSTEM_PROMPT)
        tokenizer = TextTokenizer.from_folder(folder)
        image_processor = ImageProcessor.from_folder(folder, config.vision.image_size)
        fmt = chat_format(format_name)
        try:  # the constructor checks the generation defaults the checkpoint names; a bad one is the checkpoint's
            return cls(
                tokenizer,
                image_processor,
                fmt,
                config.num_image_tokens,
                config.language.max_position_embeddings,
                system if isinstance(system, str) else DEFAULT_SYSTEM_PROMPT,
                processor_config.get("cfg_weight", DEFAULT_CFG_WEIGHT),  # type: ignore[arg-type]
                processor_config.get("image_temperature", DEFAULT_IMAGE_TEMPERATURE),  # type: ignore[arg-type]
                processor_config.get("caption_grammar"),  # type: ignore[arg-type]
                processor_config.get("candidates", DEFAULT_CANDIDATES),  # type: ignore[arg-type]
                processor_config.get("ranking_shift", DEFAULT_RANKING_SHIFT),  # type: ignore[arg-type]
                processor_config.get("verify_answers", False),  # type: ignore[arg-type]
            )
        except InputError as exc:
            raise CheckpointError(f"{path}: {exc}") from None

    def save(self, folder: Path) -> None:
        """Write tokenizer, preprocessor_config.json and processor_config.json."""
        self.tokenizer.save(folder)
        (folder / "preprocessor_config.json").write_text(
            json.dumps(self.image_processor.to_dict(), indent=2) + "\n", encoding="utf-8"
        )
        processor_config = {
            "processor_class": "VLChatProcessor",
            "image_tag": "<image_placeholder>",
            "num_image_tokens": self.num_image_tokens,
            "add_special_token": False,
            "sft_format": "deepseek",
            "mask_prompt": True,
            "ignore_id": -100,
            "chat_format": self.chat_format.name,
            "system_prompt": self.system_prompt,
            "cfg_weight": self.cfg_weight,
            "image_temperature": self.image_temperature,
        }
        if self.caption_grammar is not None:
            processor_config["caption_grammar"] = self.caption_grammar
        if self.candidates != DEFAULT_CANDIDATES:
            processor_config["candidates"] = self.candidates
        if self.ranking_shift != DEFAULT_RANKING_SHIFT:
            processor_config["ranking_shift"] = self.ranking_shift
        if self.verify_answers:
            processor_config["verify_answers"] = True
        (folder / "processor_config.json").write_text(json.dumps(processor_config, indent=2) + "\n", encoding="utf-8")

    def ranking_descriptions(self, prompt: str) -> tuple[str, ...]:
        """The answers to `Describe the image.` that an image fitting `prompt` may get: with a caption grammar
        and a prompt in it, the captions the model was taught for such images (`shapes.language.captions_for_prompt`);
        otherwise the prompt itself."""
        if self.caption_grammar is not None:
            try:
                return CAPTION_GRAMMARS[self.caption_grammar].captions(prompt)
            except ValueError:
                pass
        return (prompt,)

    def ranking_split_checks(self, prompt: str) -> tuple[SplitCheck, ...]:
        """What an image fitting `prompt` shows on either side of a line, which the ranking also asks of each
        sample: with a caption grammar and a prompt in it, the grammar's `split_checks` (for the shapes world,
        one for a relation or a count: `shapes.language.split_checks`); otherwise none."""
        if self.caption_grammar is not None:
            try:
                return CAPTION_GRAMMARS[self.caption_grammar].split_checks(prompt)
            except ValueError:
                pass
        return ()

    def checks_answer(self, question: str) -> bool:
        """Whether the caption grammar may check an answer to `question` (`answer_alternatives`)."""
        if self.caption_grammar is None:
            return False
        return CAPTION_GRAMMARS[self.caption_grammar].checks_answer(question)

    def answer_alternatives(self, question: str, answer: str) -> tuple[tuple[str, SplitCheck | None], ...]:
        """The answers the model might have meant by `answer` to `question` about one image, each with the split
        check that holds where it is right, or None where no check is likely (`scoring.verified_answer` keeps the
        one whose check the model finds likeliest): the caption grammar's (for the shapes world, `shapes.language.answer_alternatives`: relation
        questions and pair captions); none without a grammar or for a question it does not check."""
        if self.caption_grammar is None:
            return ()
        return CAPTION_GRAMMARS[self.caption_grammar].answer_alternatives(question, answer)

    # ------------------------------------------------------------------ token ids

    def expand_image_tokens(self, ids: Sequence[int]) -> list[int]:
        """Each `<image_placeholder>` -> `<begin_of_image>` + N image tokens + `<end_of_image>`."""
        special = self.tokenizer.special
        out: list[int] = []
        for token in ids:
            if token == special.image:
                out += [special.boi] + [special.image] * self.num_image_tokens + [special.eoi]
            else:
                out.append(token)
        return out

    def encode_text(self, text: str, add_bos: bool) -> list[int]:
        return self.expand_image_tokens(self.tokenizer.encode(text, add_bos=add_bos))

    def conversation(
        self, messages: Sequence[Message], system: str | None = None, add_generation_prompt: bool = True
    ) -> PromptIds:
        """Tokenise a whole conversation (system prompt: the default one unless given; pass
        "" for none)."""
        if not messages:
            raise InputError("the conversation is empty")
        text = self.chat_format.render(messages, self.system_prompt if system is None else system, add_generation_prompt)
        images = [image for m in messages for image in m.images]
        ids = self.encode_text(text, add_bos=True)
        self.check_length(len(ids))
        return PromptIds(ids, images, text)

    def continuation(self, message: Message) -> PromptIds:
        """Ids that continue a KV-cached conversation with a new user turn."""
        text = self.chat_format.next_turn(message)
        return PromptIds(self.encode_text(text, add_bos=False), list(message.images), text)

    def answer_ids(self, answer: str) -> list[int]:
        """An assistant's answer as it follows the prompt: a space, the text, end of turn."""
        return self.tokenizer.encode(" " + answer.strip(), add_bos=False) + [self.tokenizer.special.eos]

    def generation_prompt(self, prompt: str) -> list[int]:
        """Text-to-image prompt ids, ending with `<begin_of_image>` (no system prompt)."""
        if not prompt.strip():
            raise InputError("the image prompt is empty")
        text = self.chat_format.render([Message("user", prompt)], system="")
        ids = self.tokenizer.encode(text, add_bos=True) + [self.tokenizer.special.boi]
        if self.tokenizer.special.image in ids[:-1]:
            raise InputError("an image prompt cannot contain <image_placeholder>")
        return ids

    def check_length(self, length: int, reserve: int = 0) -> None:
        if length + reserve > self.max_length:
            raise InputError(
                f"the prompt is {length} tokens" + (f" plus {reserve} to generate" if reserve else "")
                + f", longer than the model's context of {self.max_length} tokens"
            )

    # ------------------------------------------------------------------ tensors

    def pixel_values(self, images: Sequence[object]) -> torch.Tensor:
        return self.image_processor([load_image(image) for image in images])  # type: ignore[arg-type]

    def batch(self, prompts: Sequence[PromptIds]) -> UnderstandingBatch:
        """Left-pad a list of tokenised prompts into one batch."""
        special = self.tokenizer.special
        length = max(len(p.ids) for p in prompts)
        input_ids = torch.full((len(prompts), length), special.pad, dtype=torch.long)
        attention = torch.zeros(len(prompts), length, dtype=torch.bool)
        images: list[object] = []
        for row, prompt in enumerate(prompts):
            n_placeholders = sum(1 for t in prompt.ids if t == special.image) // max(1, self.num_image_tokens)
            if n_placeholders != len(prompt.images):
                raise InputError(f"the prompt has {n_placeholders} image slots but {len(prompt.images)} images")
            input_ids[row, length - len(prompt.ids):] = torch.tensor(prompt.ids)
            attention[row, length - len(prompt.ids):] = True
            images += prompt.images
        image_mask = (input_ids == special.image) & attention
        return UnderstandingBatch(input_ids, attention, image_mask, self.pixel_values(images), [p.text for p in prompts])
