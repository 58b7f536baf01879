"""The engine: a loaded model plus its processor, with the two tasks as methods.

    import januspro
    janus = januspro.load("deepseek-ai/Janus-Pro-1B")          # or a local folder
    answer = janus.chat("What is in this image?", images=["cat.png"]).text
    images = janus.generate_images("a red circle", januspro.ImageOptions(n=4, seed=1))

The CLI, the HTTP server and the web app are thin adapters over this class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import torch
from PIL import Image

from januspro import scoring
from januspro.bundled import bundled_model_path
from januspro.config import JanusConfig
from januspro.device import pick_device, pick_dtype
from januspro.errors import InputError
from januspro.generation.image import (
    ProgressFn,
    budget_left,
    compiles_step,
    decode_images,
    default_budget,
    generate_image_codes,
    plan_chunks,
)
from januspro.generation.sampling import SamplingParams
from januspro.generation.text import TextDecoder, decode_tokens
from januspro.loading import LoadReport, load_model, resolve_model_path, save_weights
from januspro.models.janus import JanusModel
from januspro.packed_linear import pack_linear_layers, packing_supported, unpack_linear_layers, weight_bytes
from januspro.processing.chat_format import Message
from januspro.processing.image import ImageSource, pixels_to_pil
from januspro.processing.processor import JanusProcessor, PromptIds
from januspro.processing.tokenizer import IMAGE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatOptions:
    """Understanding (text) decoding options. temperature 0 is greedy."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    seed: int = 0
    system: str | None = None  # None: the model's default system prompt; "" for none
    # Check the answer to a question about one image where the checkpoint's caption grammar can: the model reads
    # parts of the image to settle between the answers it might have meant (`scoring.verified_answer`; for the
    # bundled model, relation questions and pair captions). A checked answer streams whole, once settled. None: the
    # checkpoint's default (`verify_answers` in its processor_config.json; on for the bundled model).
    verify: bool | None = None

    def sampling(self) -> SamplingParams:
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        return SamplingParams(self.temperature, self.top_k, self.top_p)


@dataclass(frozen=True)
class ImageOptions:
    """Text-to-image options (the original's parallel_size, cfg_weight, temperature)."""

    n: int = 1
    cfg_weight: float | None = None  # None: the checkpoint's default (5 for the official models)
    temperature: float | None = None  # None: the checkpoint's default (1 for the official models)
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    memory_budget_gb: float | None = None  # None: what the device has free
    max_images: int = 256
    # Samples drawn per returned image. Above 1 the model ranks its own samples: it reads each one back
    # (understanding pathway) and keeps the n under which the prompt (or, where the checkpoint names a caption
    # grammar, a caption the prompt stands for) is the likeliest description of the image, best first. It costs
    # that many times the generation time. None: the checkpoint's default (`candidates` in its
    # processor_config.json, else 1; the bundled model's is 16), lowered where n x it would pass max_images.
    candidates: int | None = None
    # Also return every drawn sample (`ImageResult.drawn`) and which of them were kept (`ImageResult.picked`): to
    # show the candidates, or to measure the ranking against them (`januspro eval shapes --judge-drawn`).
    keep_drawn: bool = False

    def sampling(self, default_temperature: float = 1.0) -> SamplingParams:
        """Check the options; the sampling they ask for (`default_temperature` where `temperature` is None)."""
        if not 1 <= self.n <= self.max_images:
            raise InputError(f"n must be between 1 and {self.max_images}, got {self.n}")
        if self.candidates is not None and (not 1 <= self.candidates or self.n * self.candidates > self.max_images):
            raise InputError(f"candidates must be >= 1 with n x candidates at most {self.max_images}, "
                             f"got {self.candidates} for n = {self.n}")
        if self.cfg_weight is not None and not self.cfg_weight >= 0:
            raise InputError(f"cfg_weight must be >= 0, got {self.cfg_weight}")
        if self.memory_budget_gb is not None and not self.memory_budget_gb > 0:
            raise InputError(f"memory_budget_gb must be > 0, got {self.memory_budget_gb}")
        temperature = default_temperature if self.temperature is None else self.temperature
        return SamplingParams(temperature, self.top_k, self.top_p)


@dataclass(frozen=True)
class ChatResult:
    text: str
    tokens: tuple[int, ...]
    prompt_tokens: int
    finish_reason: str  # "stop" (end of turn) or "length" (token budget spent)
    # Where checking the answer (`ChatOptions.verify`) changed it: the model's own answer (`text` and `tokens` are
    # the checked one's).
    unverified: str | None = None


@dataclass(frozen=True)
class ImageResult:
    images: list[Image.Image]
    codes: torch.Tensor = field(repr=False)  # [n, num_gen_tokens] VQ codes, on the CPU
    prompt_tokens: int = 0
    chunk_size: int = 0
    # With candidates > 1: per returned image, log P(description | image) by the model's understanding, where the
    # description is the prompt or, for a checkpoint with a caption grammar, any caption the prompt stands for
    # (`JanusProcessor.ranking_descriptions`), averaged over the shifted reads of `ranking_shift`, plus the grammar's
    # split checks (`JanusProcessor.ranking_split_checks`) (`ranking_scores`); descending.
    scores: tuple[float, ...] = ()
    # With `ImageOptions.keep_drawn`: every sample drawn (n x candidates, in drawing order), and per returned image
    # its index among them.
    drawn: list[Image.Image] = field(default_factory=list, repr=False)
    picked: tuple[int, ...] = ()


def _image_question(conversation: Sequence[Message]) -> tuple[ImageSource, str] | None:
    """The one image of a conversation and its last user turn's text (placeholders removed), or None where it
    holds another number of images or does not end with a user turn."""
    images = [image for message in conversation for image in message.images]
    if len(images) != 1 or not conversation or conversation[-1].role != "user":
        return None
    return images[0], " ".join(conversation[-1].text.replace(IMAGE, " ").split())


def _as_messages(conversation: str | Message | Sequence[Message], images: Sequence[ImageSource]) -> list[Message]:
    if isinstance(conversation, str):
        return [Message("user", conversation, tuple(images))]
    if images:
        raise InputError("pass images inside the messages when giving a whole conversation")
    if isinstance(conversation, Message):
        return [conversation]
    return list(conversation)


class Janus:
    """A Janus model ready for understanding and generation."""

    def __init__(self, model: JanusModel, processor: JanusProcessor, report: LoadReport | None = None, name: str = "",
                 image_mode: str = "auto", compile: bool = False) -> None:
        """`image_mode`: how image decode steps run (auto: CUDA graphs on CUDA, eager
        elsewhere; see `generation.image`); `compile`: torch.compile the decode step first."""
        self.model = model
        self.processor = processor
        self.report = report
        self.name = name
        self.image_mode = image_mode
        self.compile = compile
        weight = model.language_model.model.embed_tokens.weight
        self.device = weight.device
        self.dtype = weight.dtype

    @property
    def config(self) -> JanusConfig:
        return self.model.config

    # ------------------------------------------------------------ understanding

    def prompt_embeds(self, ids: torch.Tensor, image_mask: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """[B, T, D] LLM input embeddings of prompt `ids` [B, T], the image features of `pixels` [M, 3, S, S] at the
        `image_mask` [B, T] positions (the images in order of appearance)."""
        image_embeds = self.model.encode_images(pixels.to(self.device)) if pixels.shape[0] else None
        return self.model.embed_prompt(ids.to(self.device), image_mask.to(self.device), image_embeds)

    def _budget(self, prompt_len: int, options: ChatOptions) -> int:
        self.processor.check_length(prompt_len)
        room = self.processor.max_length - prompt_len
        if room < 1:
            raise InputError(f"the prompt fills the model's context of {self.processor.max_length} tokens")
        return min(options.max_new_tokens, room)

    @torch.inference_mode()
    def chat_batch(
        self,
        conversations: Sequence[Sequence[Message]],
        options: ChatOptions = ChatOptions(),
        seeds: Sequence[int] | None = None,
    ) -> list[ChatResult]:
        """Answer several conversations in one left-padded batch. `seeds` (one per
        conversation, default `options.seed` for all) let independent requests share a batch
        and still each get what they would get alone."""
        if not conversations:
            return []
        seeds = [options.seed] * len(conversations) if seeds is None else list(seeds)
        if len(seeds) != len(conversations):
            raise InputError("give one seed per conversation")
        params = options.sampling()
        prompts = [self.processor.conversation(c, options.system) for c in conversations]
        batch = self.processor.batch(prompts)
        budget = self._budget(batch.input_ids.shape[1], options)
        decoder = TextDecoder(self.model, len(prompts), batch.input_ids.shape[1] + budget, compile=self.compile)
        embeds = self.prompt_embeds(batch.input_ids, batch.image_mask, batch.pixel_values)
        logits = decoder.extend(embeds, batch.attention_mask.to(self.device))
        eos = self.processor.tokenizer.special.eos
        tokens: list[list[int]] = [[] for _ in prompts]
        for step in decode_tokens(decoder, logits, params, seeds, budget, [eos]):
            for row, token in enumerate(step):
                if token is not None:
                    tokens[row].append(token)
        results = [self._result(t, len(p.ids), eos) for t, p in zip(tokens, prompts)]
        return [self._verified(result, self.answer_check(c, options)) for result, c in zip(results, conversations)]

    def answer_check(self, conversation: Sequence[Message], options: ChatOptions) -> tuple[ImageSource, str] | None:
        """(image, question) where the answer that ends `conversation` gets checked (`ChatOptions.verify`, else the
        checkpoint's `verify_answers`): one image in the conversation and a question the caption grammar checks;
        else None."""
        verify = self.processor.verify_answers if options.verify is None else options.verify
        if not verify:
            return None
        found = _image_question(conversation)
        if found is None or not self.processor.checks_answer(found[1]):
            return None
        return found

    def _verified(self, result: ChatResult, check: tuple[ImageSource, str] | None) -> ChatResult:
        """`result`, its answer checked where `check` (`answer_check`) says so (`scoring.verified_answer`)."""
        if check is None or result.finish_reason != "stop":
            return result
        text = scoring.verified_answer(self, check[0], check[1], result.text)
        if text == result.text:
            return result
        return ChatResult(text, tuple(self.processor.answer_ids(text)), result.prompt_tokens, "stop", result.text)

    def _result(self, tokens: list[int], prompt_tokens: int, eos: int) -> ChatResult:
        finished = bool(tokens) and tokens[-1] == eos
        text = answer_text(self.processor.tokenizer.decode(tokens), f"{self.processor.chat_format.user}:", finished=True)
        return ChatResult(text, tuple(tokens), prompt_tokens, "stop" if finished else "length")

    def chat(
        self,
        conversation: str | Message | Sequence[Message],
        images: Sequence[ImageSource] = (),
        options: ChatOptions = ChatOptions(),
    ) -> ChatResult:
        """Answer one conversation (a question string with `images`, or a list of messages)."""
        return self.chat_batch([_as_messages(conversation, images)], options)[0]

    def stream_chat(
        self,
        conversation: str | Message | Sequence[Message],
        images: Sequence[ImageSource] = (),
        options: ChatOptions = ChatOptions(),
    ) -> Iterator[str]:
        """Answer one conversation as a stream of text pieces."""
        yield from ChatSession(self, options).stream_conversation(_as_messages(conversation, images), options)

    def session(self, options: ChatOptions = ChatOptions()) -> "ChatSession":
        """A multi-turn chat that encodes each image once and keeps its KV cache across turns."""
        return ChatSession(self, options)

    # ------------------------------------------------------------ generation

    def generate_image_codes(
        self, prompt: str, options: ImageOptions = ImageOptions(), progress: ProgressFn | None = None
    ) -> tuple[torch.Tensor, int, int]:
        """VQ codes of `options.n` images: ([n, num_gen_tokens] codes, prompt tokens, chunk size)."""
        params = options.sampling(self.processor.image_temperature)
        ids = self.processor.generation_prompt(prompt)
        self.processor.check_length(len(ids), reserve=self.config.num_gen_tokens)
        if options.memory_budget_gb is None:
            budget = default_budget(self.device)
        else:
            budget = budget_left(self.model, int(options.memory_budget_gb * 2**30))
            if budget <= 0:
                raise InputError(f"a memory budget of {options.memory_budget_gb} GB leaves nothing for generation "
                                 "beyond the weights (and, on CUDA, what is already allocated)")
        compiled = compiles_step(self.image_mode, self.device, self.compile)
        plan = plan_chunks(self.model, options.n, len(ids), budget, compile_step=compiled)
        codes = generate_image_codes(
            self.model, ids, self.processor.tokenizer.special.pad, n=options.n, cfg_weight=self.cfg_weight(options.cfg_weight),
            params=params, seed=options.seed, chunk_size=plan.chunk_size, progress=progress,
            mode=self.image_mode, compile_step=self.compile,
        )
        return codes, len(ids), plan.chunk_size

    def cfg_weight(self, requested: float | None) -> float:
        """The guidance weight a call asks for, else (None) the checkpoint's default."""
        return self.processor.cfg_weight if requested is None else requested

    def candidates(self, options: ImageOptions) -> int:
        """The samples per returned image a call asks for, else (None) the checkpoint's default, lowered so that
        n x candidates stays within `options.max_images`."""
        if options.candidates is not None:
            return options.candidates
        return max(1, min(self.processor.candidates, options.max_images // max(1, options.n)))

    def image_temperature(self, requested: float | None) -> float:
        """The image-code sampling temperature a call asks for, else (None) the checkpoint's default."""
        return self.processor.image_temperature if requested is None else requested

    def generate_images(
        self, prompt: str, options: ImageOptions = ImageOptions(), progress: ProgressFn | None = None
    ) -> ImageResult:
        """`options.n` images for `prompt`, the same ones every time for the same seed. With K =
        `candidates(options)` > 1, n x K are drawn and the n the model itself ranks best
        (`ranking_scores`) are returned, best first."""
        options.sampling()
        candidates = self.candidates(options)
        drawn = replace(options, n=options.n * candidates, candidates=1)
        codes, prompt_tokens, chunk = self.generate_image_codes(prompt, drawn, progress)
        images = pixels_to_pil(decode_images(self.model, codes))
        if candidates == 1:
            picked = tuple(range(len(images)))
            result = ImageResult(images, codes.cpu(), prompt_tokens, chunk)
        else:
            best, scores = self.best_samples(images, prompt, options.n)
            picked = tuple(best.tolist())
            result = ImageResult([images[i] for i in picked], codes.cpu()[best], prompt_tokens, chunk,
                                 tuple(scores.tolist()))
        return replace(result, drawn=list(images), picked=picked) if options.keep_drawn else result

    # ------------------------------------------------------------ scoring (`januspro.scoring`)

    def ranking_scores(self, images: Sequence[ImageSource], prompt: str) -> torch.Tensor:
        """[len(images)] how well the model's understanding finds that each image shows `prompt`
        (`scoring.ranking_scores`)."""
        return scoring.ranking_scores(self, images, prompt)

    def best_samples(self, images: Sequence[ImageSource], prompt: str, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
        """([k] indices of the best min(keep, len(images)) samples by `ranking_scores`, best first; [k] their scores)
        (`scoring.best_samples`: only a shortlist gets the shifted reads)."""
        return scoring.best_samples(self, images, prompt, keep)

    def description_scores(self, images: Sequence[ImageSource], text: str | Sequence[str],
                           batch_size: int = 16) -> torch.Tensor:
        """[len(images)] log-probability that the model, asked to describe each image, answers `text` (or any one
        of several texts) (`scoring.description_scores`)."""
        return scoring.description_scores(self, images, text, batch_size)

    def image_code_logprobs(self, images: Sequence[ImageSource], prompt: str, batch_size: int = 16) -> torch.Tensor:
        """[len(images)] mean log-probability per code that the model, generating for `prompt`, draws each
        image's VQ codes (`scoring.image_code_logprobs`)."""
        return scoring.image_code_logprobs(self, images, prompt, batch_size)

    def save(self, folder: str | Path, dtype: torch.dtype | None = None, max_shard_bytes: int | None = None) -> Path:
        """Write a complete checkpoint folder in the official layout (config.json,
        safetensors, tokenizer, preprocessor and processor configs) that `load` reads back."""
        folder = Path(folder)
        save_weights(self.model.state_dict(), self.config, folder, dtype, max_shard_bytes)
        self.processor.save(folder)
        return folder

    def _weight_bytes(self) -> int:
        return weight_bytes(self.model)


class ChatSession:
    """A conversation with memory: each turn's prompt and answer stay in the KV cache, so a
    new turn costs only its own tokens, and each image is encoded exactly once."""

    def __init__(self, janus: Janus, options: ChatOptions = ChatOptions()) -> None:
        self.janus = janus
        self.options = options
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (and free its KV cache)."""
        self.history: list[Message] = []
        self._decoder: TextDecoder | None = None
        self._pending: list[int] = []  # sampled tokens not yet in the cache (end of last answer)
        self._last_result: ChatResult | None = None

    @property
    def last_result(self) -> ChatResult | None:
        """The finished answer of the last turn: after `ask`, or once a `stream` is exhausted."""
        return self._last_result

    def stream_conversation(self, messages: Sequence[Message], options: ChatOptions | None = None) -> Iterator[str]:
        """Start over from a whole conversation (e.g. an API request's history, ending with a
        user turn) and stream the answer; later turns continue it with `stream`/`ask`."""
        options = options or self.options
        self.reset()
        self.history = list(messages)
        # Draws what `Janus.chat` draws for the same messages.
        yield from self._stream_prompt(self.janus.processor.conversation(messages, options.system), options)

    def ask(self, text: str, images: Sequence[ImageSource] = (), options: ChatOptions | None = None) -> ChatResult:
        """Answer the next user turn."""
        for _ in self.stream(text, images, options):
            pass
        assert self._last_result is not None
        return self._last_result

    def stream(self, text: str, images: Sequence[ImageSource] = (), options: ChatOptions | None = None) -> Iterator[str]:
        options = options or self.options
        message = Message("user", text, tuple(images))
        processor = self.janus.processor
        if self._decoder is None:
            prompt = processor.conversation([message], options.system)
        else:
            prompt = processor.continuation(message)
            prompt = PromptIds(self._pending + prompt.ids, prompt.images, prompt.text)
        turn = sum(1 for m in self.history if m.role == "assistant")
        self.history.append(message)
        yield from self._stream_prompt(prompt, options, turn)

    @torch.inference_mode()
    def _stream_prompt(self, prompt: PromptIds, options: ChatOptions, turn: int = 0) -> Iterator[str]:
        janus = self.janus
        processor = janus.processor
        params = options.sampling()
        used = self._decoder.length if self._decoder else 0
        budget = janus._budget(used + len(prompt.ids), options)
        batch = processor.batch([prompt])
        if self._decoder is None:
            self._decoder = TextDecoder(janus.model, 1, len(prompt.ids) + budget + 64, compile=janus.compile)
        embeds = janus.prompt_embeds(batch.input_ids, batch.image_mask, batch.pixel_values)
        logits = self._decoder.extend(embeds)
        answer_start = self._decoder.length
        check = janus.answer_check(self.history, options)  # a checked answer is yielded once settled
        eos = processor.tokenizer.special.eos
        user_cue = f"{processor.chat_format.user}:"
        tokens: list[int] = []
        sent = ""  # the pieces yielded so far, together: always a beginning of the final `result.text`
        # Turn 0 draws what `Janus.chat` draws for the same prompt; later turns draw fresh noise.
        for step in decode_tokens(self._decoder, logits, params, [options.seed + turn], budget, [eos]):
            token = step[0]
            if token is None:
                break
            tokens.append(token)
            decoded = processor.tokenizer.decode(tokens)
            if user_cue in decoded:
                break  # the model started the next user turn: stop, as the original does
            if decoded.endswith("\ufffd"):
                continue  # byte-level BPE split a character across tokens: wait for the rest of it
            settled = answer_text(decoded, user_cue)
            if len(settled) > len(sent) and check is None:
                yield settled[len(sent):]
                sent = settled
        result = janus._verified(janus._result(tokens, len(prompt.ids), eos), check)
        if len(result.text) > len(sent) and result.text.startswith(sent):
            yield result.text[len(sent):]
        self._last_result = result
        self.history.append(Message("assistant", result.text))
        if result.unverified is not None:  # the cache holds the model's own answer: the checked one replaces it
            self._decoder.rewind(answer_start)
            self._pending = list(result.tokens)
        else:  # the last sampled token is not in the cache yet; the turn must end with EOS
            self._pending = tokens[-1:] + ([] if tokens and tokens[-1] == eos else [eos])


def answer_text(text: str, user_cue: str, finished: bool = False) -> str:
    """The answer in the decoded text of an assistant turn: cut where the model starts writing the next user turn
    (`user_cue`; the original stops at that string) and stripped. While the answer is still growing
    (`finished=False`), a tail that may yet become that cue is held back too, so that what later tokens add never
    changes what was returned: a stream's pieces (each what this returns beyond the last) join to exactly the
    finished answer."""
    cut = text.find(user_cue)
    if cut >= 0:
        text = text[:cut]
    elif not finished:
        for n in range(min(len(user_cue) - 1, len(text)), 0, -1):
            if user_cue.startswith(text[-n:]):
                text = text[:-n]
                break
    return text.strip()


def quantize_model(model: JanusModel, kind: str) -> None:
    """Quantise the LLM's decoder layers in place; `kind`: "int8" (weight-only, per channel)."""
    if kind != "int8":
        raise InputError(f"unknown quantization {kind!r} (only 'int8')")
    from januspro.quantize import quantize_int8

    quantize_int8(model.language_model.model.layers)
    if model.language_model.model.embed_tokens.weight.device.type == "cpu":
        log.warning("int8 weights save memory, but on CPU their matmuls are slower than fp32 ones")


def prepare_for_inference(model: JanusModel, device: torch.device, compile: bool = False) -> None:
    """Speed-only layout choices for `device` (outputs are unchanged up to float rounding).
    On CPU: oneDNN's convolutions are faster in NHWC, so the VQ decoder is kept channels-last
    (about 20% faster for 384 px images); and the linear layers of the LLM, its heads and the
    generation aligner get their weights packed for oneDNN (`packed_linear`: decode steps about
    twice as fast). Packing makes the model inference-only, and is skipped when the decode step
    is to be compiled (torch.compile does its own weight handling).
    Everywhere else (CUDA, MPS, unpacked CPU): each LLM layer's q/k/v and gate/up projections
    become one matmul each, over views of the same memory (`LlamaModel.fuse_weights`): a decode
    step then runs about half as many kernels, which is what bounds it on a GPU."""
    if device.type == "cpu":
        model.gen_vision_model.to(memory_format=torch.channels_last)
        dtype = model.gen_embed.weight.dtype
        if not compile and packing_supported(device, dtype):
            for part in (model.language_model, model.gen_head, model.gen_aligner):
                pack_linear_layers(part)
    model.language_model.model.fuse_weights()  # leaves packed and int8 layers alone


def undo_inference_layout(model: JanusModel) -> None:
    """The inverse of `prepare_for_inference` (before training or quantising): packed weights
    become trainable `nn.Linear` layers again, fused projections get their own parameters, and
    the VQ model goes back to the contiguous memory format."""
    unpack_linear_layers(model)
    model.language_model.model.unfuse_weights()
    model.gen_vision_model.to(memory_format=torch.contiguous_format)


def load(
    name_or_path: str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    chat_format: str | None = None,
    image_mode: str = "auto",
    compile: bool = False,
    quantize: str | None = None,
) -> Janus:
    """Load a Janus checkpoint: a local folder, a Hugging Face hub id, or (None) the bundled
    shapes-world model. Device: cuda, then mps, then cpu unless given; dtype: bf16 on
    accelerators, fp32 on CPU unless given. `quantize="int8"`: int8 weight-only LLM layers."""
    folder = bundled_model_path() if name_or_path is None else resolve_model_path(name_or_path)
    device_t = pick_device(device)
    dtype_t = pick_dtype(device_t, dtype)
    model, report = load_model(folder, device_t, dtype_t)
    if quantize is not None:
        quantize_model(model, quantize)
    prepare_for_inference(model, device_t, compile)
    processor = JanusProcessor.from_folder(folder, model.config, chat_format, name_hint=str(name_or_path or ""))
    return Janus(model, processor, report, str(name_or_path or "bundled shapes-world model"), image_mode, compile)
