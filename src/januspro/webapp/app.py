"""The Gradio web app around one loaded model, laid out like DeepSeek's Janus-Pro demo.

    demo = build_app(januspro.load(...), WebSettings())
    demo.queue().launch(server_name="127.0.0.1", server_port=7860)

Multimodal Understanding: an image, a question, seed, top_p and temperature, a Chat button and
examples; the answer streams into a chat that keeps the image across turns (each browser tab
has its own `ChatSession`, whose KV cache holds the image, so follow-up questions are cheap).
A new image, or Clear, starts a new conversation.

Text-to-Image: a prompt, CFG weight (1-10), temperature, seed, the number of images, a 2x
upscale switch and a Generate button; a progress bar follows the tokens, the images fill a
gallery and a status line says how long it took and which upscaler was used.

Both tasks share one model, so their events share one queue slot (`concurrency_id`): the model
never runs two requests at once.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from januspro.device import dtype_name  # noqa: E402
from januspro.engine import ChatOptions, ChatSession, ImageOptions, Janus  # noqa: E402
from januspro.errors import JanusError  # noqa: E402
from januspro.upscale import locate_weights, upscale_images  # noqa: E402
from januspro.webapp.examples import GENERATION, write_examples  # noqa: E402

MODEL_QUEUE = "januspro-model"


@dataclass(frozen=True)
class WebSettings:
    max_images: int = 8  # the "Number of images" slider's maximum
    default_images: int = 4
    max_new_tokens: int = 512  # answer length (the original demo's)
    upscale_weights: str | None = None  # Real-ESRGAN weights; else $JANUSPRO_UPSCALER; else Lanczos
    session_ttl_s: int = 3600  # a tab's conversation (and its KV cache) is freed this long after its last use
    examples_dir: Path | None = None  # where the example images are drawn (default: a temp folder)


class Conversation:
    """One browser tab's chat: the engine session and a fingerprint of the image it is about."""

    def __init__(self, janus: Janus) -> None:
        self.session: ChatSession = janus.session()
        self.image_key: str | None = None

    def free(self) -> None:
        self.session.reset()


def image_key(image: Image.Image | None) -> str | None:
    """A fingerprint of the pixels (Gradio hands over a new object on every event)."""
    if image is None:
        return None
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(f"{image.mode}{image.size}".encode())
    return digest.hexdigest()


def chat_options(seed: float | None, top_p: float, temperature: float, max_new_tokens: int) -> ChatOptions:
    """The demo's sliders as engine options: top_p 1 is no nucleus cut, top_p 0 the single most
    likely token; temperature 0 is greedy."""
    top_k = 1 if top_p <= 0 else None
    nucleus = None if top_p <= 0 or top_p >= 1 else float(top_p)
    return ChatOptions(max_new_tokens=max_new_tokens, temperature=float(temperature), top_p=nucleus, top_k=top_k,
                       seed=int(seed or 0))


def image_options(seed: float | None, cfg_weight: float, temperature: float, count: float, candidates: float,
                  max_images: int) -> ImageOptions:
    """The demo's generation controls as engine options; candidates > 1: each image is the model's
    own pick of that many samples."""
    return ImageOptions(n=int(count), cfg_weight=float(cfg_weight), temperature=float(temperature),
                        seed=int(seed or 0), max_images=max_images, candidates=int(candidates))


def upscaler_note(weights: str | None) -> str:
    """What the upscale switch will use, for its label."""
    try:
        path, reason = locate_weights(2, weights)
    except JanusError as exc:
        return f"unavailable: {exc}"
    return f"Real-ESRGAN ({path.name})" if path else f"Lanczos resampling ({reason})"


def build_app(janus: Janus, settings: WebSettings = WebSettings()) -> gr.Blocks:
    """The demo's Blocks around `janus`."""
    examples_dir = settings.examples_dir
    if examples_dir is None:
        examples_dir = Path(tempfile.mkdtemp(prefix="januspro-examples-"))
        atexit.register(shutil.rmtree, examples_dir, ignore_errors=True)
    understanding_examples = write_examples(examples_dir)

    def chat(image: Image.Image | None, question: str, seed: float | None, top_p: float, temperature: float,
             history: list[dict[str, Any]] | None, state: Conversation | None) -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        if not question:
            raise gr.Error("Type a question first.")
        state = state or Conversation(janus)
        key = image_key(image)
        history = list(history or [])
        images: list[Image.Image] = []
        if not history or key != state.image_key:  # a new conversation about this image
            state.session.reset()
            state.image_key = key
            history = []
            images = [image] if image is not None else []
        options = chat_options(seed, top_p, temperature, settings.max_new_tokens)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": ""}]
        yield history, state, ""
        try:
            for piece in state.session.stream(question, images, options):
                history[-1] = {"role": "assistant", "content": history[-1]["content"] + piece}
                yield history, state, ""
        except JanusError as exc:  # e.g. the conversation outgrew the context
            state.session.reset()
            state.image_key = None  # the next question starts a new conversation
            raise gr.Error(str(exc)) from None
        if not history[-1]["content"]:
            history[-1] = {"role": "assistant", "content": "(empty answer)"}
            yield history, state, ""

    def clear(state: Conversation | None) -> tuple[list[Any], Conversation | None, str]:
        if state is not None:
            state.image_key = None  # the next question starts over
        return [], state, ""

    def generate(prompt: str, seed: float | None, cfg_weight: float, temperature: float, count: float,
                 candidates: float, upscale: bool, progress: gr.Progress = gr.Progress()) -> tuple[list[Image.Image], str]:
        prompt = (prompt or "").strip()
        if not prompt:
            raise gr.Error("Type a prompt first.")
        options = image_options(seed, cfg_weight, temperature, count, candidates, settings.max_images)
        start = time.perf_counter()
        progress(0, desc="Generating")
        try:
            result = janus.generate_images(
                prompt, options, progress=lambda done, total: progress((done, total), desc="Generating", unit="tokens"))
            images = result.images
            size = images[0].size
            note = f"{len(images)} image{'s' * (len(images) > 1)} of {size[0]}x{size[1]}"
            candidates = janus.candidates(options)
            if candidates > 1:
                note += f", the model's best of {options.n * candidates} samples"
            if upscale:
                progress(1.0, desc="Upscaling")
                images, method = upscale_images(images, 2, weights=settings.upscale_weights, device=janus.device)
                note += f", upscaled 2x to {images[0].size[0]}x{images[0].size[1]} with {method}"
        except JanusError as exc:
            raise gr.Error(str(exc)) from None
        return images, f"{note} in {time.perf_counter() - start:.1f}s (seed {options.seed})."

    with gr.Blocks(title="januspro", analytics_enabled=False) as demo:
        state = gr.State(None, time_to_live=settings.session_ttl_s,
                         delete_callback=lambda conversation: conversation and conversation.free())
        gr.Markdown(f"# januspro\nModel **{janus.name}** on {janus.device} ({dtype_name(janus.dtype)})",
                    elem_id="title")

        gr.Markdown("## Multimodal Understanding")
        with gr.Row():
            image_input = gr.Image(type="pil", image_mode="RGB", label="Image", sources=["upload", "clipboard"],
                                   height=420, elem_id="und-image")
            with gr.Column():
                chatbot = gr.Chatbot(label="Conversation", elem_id="chatbot", height=320, buttons=["copy"],
                                     placeholder="Upload an image and ask about it; follow-up questions keep the image.")
                question_input = gr.Textbox(label="Question", placeholder="What is in the image?", elem_id="question")
                with gr.Row():
                    und_seed = gr.Number(label="Seed", precision=0, value=42, elem_id="und-seed")
                    top_p = gr.Slider(minimum=0, maximum=1, value=0.95, step=0.05, label="top_p", elem_id="top-p")
                    temperature = gr.Slider(minimum=0, maximum=1, value=0.1, step=0.05, label="temperature",
                                            elem_id="und-temperature")
        with gr.Row():
            chat_button = gr.Button("Chat", variant="primary", elem_id="chat-button")
            clear_button = gr.Button("Clear conversation", elem_id="clear-button")
        gr.Examples(label="Multimodal Understanding examples", examples=understanding_examples,
                    inputs=[image_input, question_input])

        gr.Markdown("## Text-to-Image Generation")
        with gr.Row():
            cfg_weight = gr.Slider(minimum=1, maximum=10, value=janus.processor.cfg_weight, step=0.5, label="CFG Weight",
                                   elem_id="cfg")  # the model's default (5 for the official models)
            default_temperature = janus.processor.image_temperature  # the model's default (1 for the official models)
            t2i_temperature = gr.Slider(minimum=0, maximum=max(1.0, default_temperature), value=default_temperature,
                                        step=0.05, label="temperature", elem_id="t2i-temperature")
        prompt_input = gr.Textbox(label="Prompt (more detail helps produce better images)", elem_id="prompt")
        with gr.Row():
            t2i_seed = gr.Number(label="Seed", precision=0, value=12345, elem_id="t2i-seed")
            count = gr.Slider(minimum=1, maximum=settings.max_images, value=min(settings.default_images, settings.max_images),
                              step=1, label="Number of images", elem_id="count")
            candidates = gr.Slider(minimum=1, maximum=16, value=min(16, janus.processor.candidates), step=1,
                                   label="Samples per image (the model keeps its best)", elem_id="candidates")
            upscale = gr.Checkbox(label="Upscale 2x", value=False, elem_id="upscale",
                                  info=upscaler_note(settings.upscale_weights))
        generate_button = gr.Button("Generate Images", variant="primary", elem_id="generate-button")
        gallery = gr.Gallery(label="Generated Images", columns=4, height=320, format="png", elem_id="gallery")
        status = gr.Markdown("", elem_id="t2i-status")
        gr.Examples(label="Text-to-Image examples", examples=[[p] for p in GENERATION], inputs=[prompt_input])

        chat_inputs = [image_input, question_input, und_seed, top_p, temperature, chatbot, state]
        chat_outputs = [chatbot, state, question_input]
        model_event = dict(concurrency_limit=1, concurrency_id=MODEL_QUEUE)
        chat_button.click(chat, chat_inputs, chat_outputs, api_name="chat", show_progress="minimal", **model_event)
        question_input.submit(chat, chat_inputs, chat_outputs, api_visibility="private", show_progress="minimal",
                              **model_event)
        clear_button.click(clear, [state], chat_outputs, api_visibility="private", queue=False)
        # A new image starts a new conversation (the chat handler sees the empty history).
        image_input.change(lambda: [], None, chatbot, api_visibility="private", queue=False)
        t2i_inputs = [prompt_input, t2i_seed, cfg_weight, t2i_temperature, count, candidates, upscale]
        generate_button.click(generate, t2i_inputs, [gallery, status], api_name="generate", **model_event)
        prompt_input.submit(generate, t2i_inputs, [gallery, status], api_visibility="private", **model_event)
    return demo


def launch_kwargs() -> dict[str, Any]:
    """launch() options for a self-contained app: no server-side rendering (it needs node), no
    MCP server, errors shown in the page."""
    return {"ssr_mode": False, "mcp_server": False, "show_error": True}
