"""The Gradio web app, end to end in a real headless browser (Debian's chromium via Playwright):
upload an image and ask, ask a follow-up, generate images with 2x upscaling; answers and images
must be exactly what the engine gives for the same settings."""

from __future__ import annotations

import io
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gr = pytest.importorskip("gradio")

import januspro  # noqa: E402
from januspro import ImageOptions  # noqa: E402
from januspro.webapp.app import WebSettings, build_app, chat_options, image_key, image_options, launch_kwargs  # noqa: E402
from januspro.webapp.examples import UNDERSTANDING, draw_scene  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MAX_NEW_TOKENS = 24


def _alnum(text: str) -> str:
    """Letters and digits only: what survives Markdown rendering of a random model's answer."""
    return re.sub(r"[^A-Za-z0-9]", "", text)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(condition: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def janus(tiny_checkpoint: Path) -> januspro.Janus:
    return januspro.load(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def web(janus: januspro.Janus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    examples = tmp_path_factory.mktemp("examples")
    demo = build_app(janus, WebSettings(max_new_tokens=MAX_NEW_TOKENS, examples_dir=examples))
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **launch_kwargs())
    try:
        yield f"http://127.0.0.1:{port}/", examples
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_understanding_and_generation_in_a_browser(browser: Any, web: tuple[str, Path], janus: januspro.Janus,
                                                   tmp_path: Path) -> None:
    url, examples = web
    page = browser.new_page(viewport={"width": 1280, "height": 1800})
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(url)
    page.wait_for_selector("#chat-button", timeout=60_000)

    # Multimodal understanding: upload a scene, ask, then ask a follow-up about the same image.
    scene_path = examples / UNDERSTANDING[1][0]
    scene = Image.open(scene_path).convert("RGB")
    page.locator("#und-image input[type=file]").set_input_files(str(scene_path))
    page.locator("#und-image img").first.wait_for(timeout=30_000)
    options = chat_options(42, 0.95, 0.1, MAX_NEW_TOKENS)  # the page's default seed, top_p, temperature
    session = janus.session(options)
    expected = [session.ask("How many shapes are there?", [scene]).text, session.ask("What color is the square?").text]
    assert all(len(_alnum(answer)) >= 3 for answer in expected)  # else the check below would prove nothing
    bot = page.locator('#chatbot [data-testid="bot"]')
    for turn, question in enumerate(["How many shapes are there?", "What color is the square?"]):
        page.locator("#question textarea").fill(question)
        page.locator("#chat-button").click()
        _wait(lambda: bot.count() == turn + 1 and _alnum(expected[turn]) in _alnum(bot.nth(turn).inner_text()),
              what=f"answer {turn + 1}")
    assert page.locator('#chatbot [data-testid="user"]').count() == 2
    assert page.locator("#question textarea").input_value() == ""  # cleared for the next question

    # Text-to-image: type a prompt, ask for 2x upscaling, generate.
    page.locator("#prompt textarea").fill("a red circle to the left of a blue square")
    page.locator("#upscale input[type=checkbox]").check()
    page.locator("#generate-button").click()
    images = page.locator("#gallery img")
    _wait(lambda: images.count() == 4, what="4 generated images in the gallery")
    _wait(lambda: "Lanczos" in page.inner_text("#t2i-status"), what="the upscale status")
    assert "upscaled 2x to 64x64 with Lanczos resampling" in page.inner_text("#t2i-status")
    reference = janus.generate_images("a red circle to the left of a blue square",
                                      ImageOptions(n=4, cfg_weight=5.0, temperature=1.0, seed=12345)).images
    for index, image in enumerate(reference):
        served = page.request.get(images.nth(index).get_attribute("src")).body()
        got = np.asarray(Image.open(io.BytesIO(served)).convert("RGB"))
        assert np.array_equal(got, np.asarray(image.resize((64, 64), Image.LANCZOS))), index

    screenshot = tmp_path / "webapp.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"web app screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    assert not [u for u in failed if not u.startswith(url)], failed  # nothing outside the app was fetched
    page.close()


def test_examples_and_a_new_image_start_a_new_conversation(browser: Any, web: tuple[str, Path],
                                                           janus: januspro.Janus) -> None:
    url, examples = web
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(url)
    page.wait_for_selector("#chat-button", timeout=60_000)
    bot = page.locator('#chatbot [data-testid="bot"]')
    options = chat_options(42, 0.95, 0.1, MAX_NEW_TOKENS)
    # First conversation: an uploaded image.
    first, _, question = UNDERSTANDING[0]
    page.locator("#und-image input[type=file]").set_input_files(str(examples / first))
    page.locator("#question textarea").fill(question)
    page.locator("#chat-button").click()
    expected = janus.chat(question, images=[Image.open(examples / first).convert("RGB")], options=options).text
    assert len(_alnum(expected)) >= 3
    _wait(lambda: bot.count() == 1 and _alnum(expected) in _alnum(bot.first.inner_text()), what="the first answer")
    # An example row fills in another image and its question: the chat starts over.
    name, _, question = UNDERSTANDING[2]
    page.get_by_text(question).first.click()
    _wait(lambda: page.locator("#question textarea").input_value() == question and bot.count() == 0,
          what="the example to load and the chat to clear")
    page.locator("#chat-button").click()
    expected = janus.chat(question, images=[Image.open(examples / name).convert("RGB")], options=options).text
    assert len(_alnum(expected)) >= 3
    _wait(lambda: bot.count() == 1 and _alnum(expected) in _alnum(bot.first.inner_text()), what="the example's answer")
    # Text-to-image examples fill in the prompt.
    page.get_by_text("three green triangles").click()
    _wait(lambda: page.locator("#prompt textarea").input_value() == "three green triangles", what="the prompt example")
    page.close()


# ------------------------------------------------------------------------------ without a browser


def test_slider_values_map_to_engine_options() -> None:
    assert chat_options(None, 1.0, 0.0, 16).top_p is None and chat_options(None, 1.0, 0.0, 16).seed == 0
    greedy = chat_options(3, 0.0, 0.5, 16)
    assert greedy.top_k == 1 and greedy.top_p is None and greedy.seed == 3
    assert chat_options(3, 0.95, 0.1, 16).top_p == 0.95
    options = image_options(None, 2.5, 1.0, 4.0, 8.0, 64)
    assert options == ImageOptions(n=4, cfg_weight=2.5, temperature=1.0, seed=0, max_images=64, candidates=8)
    with pytest.raises(januspro.InputError, match="candidates"):
        image_options(1, 2.5, 1.0, 16, 8, 64).sampling()  # 128 samples: more than the page allows


def test_generation_sliders_start_at_the_models_defaults(janus: januspro.Janus, tmp_path: Path) -> None:
    """The CFG, temperature and samples-per-image sliders start at the checkpoint's defaults (processor_config.json), and a
    default temperature above 1 widens its slider instead of being clipped."""
    saved = janus.processor.cfg_weight, janus.processor.image_temperature, janus.processor.candidates
    janus.processor.cfg_weight, janus.processor.image_temperature, janus.processor.candidates = 2.5, 1.4, 6
    try:
        demo = build_app(janus, WebSettings(max_new_tokens=MAX_NEW_TOKENS, examples_dir=tmp_path))
    finally:
        janus.processor.cfg_weight, janus.processor.image_temperature, janus.processor.candidates = saved
    sliders = {b.elem_id: b for b in demo.blocks.values() if isinstance(b, gr.Slider)}
    assert sliders["cfg"].value == 2.5
    assert sliders["t2i-temperature"].value == 1.4 and sliders["t2i-temperature"].maximum == 1.4
    assert sliders["candidates"].value == 6  # samples per image: the checkpoint's default too


def test_image_key_follows_the_pixels() -> None:
    one, same = draw_scene([("circle", "red", 20, 20, 8)]), draw_scene([("circle", "red", 20, 20, 8)])
    other = draw_scene([("square", "red", 20, 20, 8)])
    assert image_key(one) == image_key(same) != image_key(other)
    assert image_key(None) is None


def test_examples_are_drawn_offline(tmp_path: Path) -> None:
    from januspro.webapp.examples import write_examples

    rows = write_examples(tmp_path)
    assert len(rows) == len(UNDERSTANDING)
    for path, question in rows:
        image = Image.open(path)
        assert image.size == (64, 64) and question
        assert len(set(image.getdata())) >= 2  # white plus at least one colour
