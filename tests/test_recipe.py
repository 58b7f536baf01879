"""CI smoke run of the bundled-model recipe: every part (data, tokenizer, VQ, SigLIP ViT, LM,
stages 1-3, export) for a few steps on tiny data, then the result loads and works."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import januspro
from januspro.training.build import build_bundled
from januspro.training.recipe import BUNDLED_CANDIDATES, BUNDLED_CFG_WEIGHT, BUNDLED_IMAGE_TEMPERATURE


def test_bundled_recipe_runs_end_to_end(tmp_path: Path) -> None:
    out = build_bundled(tmp_path / "model", workdir=tmp_path / "work", smoke=True, progress=False)
    card = json.loads((out / "training.json").read_text())
    assert set(card["seconds"]) >= {"data", "tokenizer", "components", "stages", "stage4", "decoder", "total"}
    assert set(card["components_final"]) == {"vq", "vq_blank_codes", "vq_decoder", "siglip", "stage4_vit",
                                             "vq_decoder_final"}
    assert "patch_loss" in card["components_final"]["siglip"]  # the smoke recipe trains the ViT's dense head too
    assert "patch_loss" in card["components_final"]["stage4_vit"]  # and continues it before stage 4
    train = tmp_path / "work" / "train"
    rows = [line.split(",") for line in (train / "loss.csv").read_text().splitlines()[1:]]
    assert {row[0] for row in rows} == {"0", "1", "2", "3", "4", "5"}  # LM pre-training, stages 1-3, then stage 4's two
    # Stage 4 (its own run, appended) learns understanding and text first, with no image loss, then the mix with t2i.
    image_loss = {stage: [float(row[4]) for row in rows if row[0] == stage] for stage in ("4", "5")}
    assert all(math.isnan(loss) for loss in image_loss["4"]) and not all(math.isnan(loss) for loss in image_loss["5"])
    data4 = [json.loads(line) for line in (tmp_path / "work" / "data4" / "manifest.jsonl").read_text().splitlines()]
    assert len(data4) == 16 + 32 + 8  # stage 4's own data, Recipe.stage4_data
    janus = januspro.load(out, device="cpu")
    assert janus.dtype == torch.float32 and janus.model.gen_embed.weight.dtype == torch.float32  # bf16 on disk
    assert len(janus.config.gen_vision.blank_patch_codes) == janus.config.gen_vision.num_image_tokens  # tagged
    assert janus.processor.system_prompt == ""
    assert janus.processor.cfg_weight == BUNDLED_CFG_WEIGHT  # the default guidance of its image generation
    assert janus.processor.image_temperature == BUNDLED_IMAGE_TEMPERATURE  # and its sampling temperature
    assert janus.processor.caption_grammar == "shapes-world"  # and how it describes images (ranks its samples)
    assert janus.processor.candidates == BUNDLED_CANDIDATES  # and how many samples per image it ranks by default
    assert janus.processor.verify_answers  # and checks its answers about one image by default
    assert janus.chat("What color is the circle?", images=[torch.zeros(64, 64, 3, dtype=torch.uint8).numpy()],
                      options=januspro.ChatOptions(max_new_tokens=4)).tokens
    result = janus.generate_images("a red circle", januspro.ImageOptions(n=2, seed=0))
    assert [im.size for im in result.images] == [(64, 64)] * 2


def test_shipped_model_was_made_by_the_current_recipe() -> None:
    """`januspro train bundled` (the documented command) reproduces the shipped model: its card
    records exactly the recipe that the code now defines."""
    from dataclasses import asdict

    from januspro.bundled import BUNDLED_DIR
    from januspro.training.recipe import (
        BUNDLED_CANDIDATES, BUNDLED_CFG_WEIGHT, BUNDLED_IMAGE_TEMPERATURE, BUNDLED_RANKING_SHIFT, Recipe,
    )

    card = json.loads((BUNDLED_DIR / "training.json").read_text())
    assert card["command"] == "januspro train bundled"
    assert card["recipe"] == json.loads(json.dumps(asdict(Recipe()), default=str))
    processor_config = json.loads((BUNDLED_DIR / "processor_config.json").read_text())
    assert processor_config["cfg_weight"] == BUNDLED_CFG_WEIGHT  # what a rebuild writes
    assert processor_config["image_temperature"] == BUNDLED_IMAGE_TEMPERATURE
    assert processor_config["caption_grammar"] == "shapes-world" and processor_config["candidates"] == BUNDLED_CANDIDATES
    assert processor_config["ranking_shift"] == BUNDLED_RANKING_SHIFT


def test_work_files_never_land_inside_the_package(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The documented `--out src/januspro/assets/shapes-model` is a relative path: data and
    checkpoints (150 MB) must still go to runs/, not beside the model into the package."""
    from januspro.bundled import BUNDLED_DIR
    from januspro.training.build import default_workdir

    assert default_workdir(BUNDLED_DIR) == Path("runs/bundled-work")
    monkeypatch.chdir(BUNDLED_DIR.parent.parent.parent)  # src/, so that the path below is relative
    assert default_workdir(Path("januspro/assets/shapes-model")) == Path("runs/bundled-work")
    assert default_workdir(tmp_path / "model") == tmp_path / "model-work"


def test_recipe_data_follows_multi_turn(tmp_path: Path) -> None:
    """`Recipe.multi_turn` reaches the dataset: at 1.0 every understanding record asks two or
    more questions, at 0.0 exactly one."""
    from dataclasses import replace

    from januspro.training.build import make_data
    from januspro.training.recipe import smoke_recipe

    def turns(multi_turn: float, folder: Path) -> set[int]:
        data = make_data(replace(smoke_recipe(), multi_turn=multi_turn), folder)
        records = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
        return {len(r["messages"]) // 2 for r in records if r["kind"] == "understanding"}

    assert min(turns(1.0, tmp_path / "a")) >= 2
    assert turns(0.0, tmp_path / "b") == {1}


def test_recipe_data_follows_text_paragraphs(tmp_path: Path) -> None:
    """`Recipe.text_paragraphs` reaches the dataset: at 1.0 every text record is a prompt followed
    by facts, at 0.0 none is."""
    from dataclasses import replace

    from januspro.training.build import make_data
    from januspro.training.recipe import smoke_recipe

    def texts(share: float, folder: Path) -> list[str]:
        data = make_data(replace(smoke_recipe(), text_paragraphs=share), folder)
        records = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
        return [r["text"] for r in records if r["kind"] == "text"]

    assert all(". " in text for text in texts(1.0, tmp_path / "a"))
    assert not any(". " in text for text in texts(0.0, tmp_path / "b"))
    # Recipe.paragraph_chats turns the paragraphs into image-free conversations.
    data = make_data(replace(smoke_recipe(), text_paragraphs=1.0, paragraph_chats=1.0), tmp_path / "c")
    records = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    assert not any(r["kind"] == "text" for r in records)
    assert any(r["kind"] == "understanding" and r["images"] == [] for r in records)


def test_recipe_data_follows_question_weights(tmp_path: Path) -> None:
    """`Recipe.question_weights` reaches the dataset: a type weighted 0 is never asked, and None asks
    every type."""
    from dataclasses import replace

    from januspro.training.build import make_data
    from januspro.training.recipe import smoke_recipe

    def questions(weights: dict[str, float] | None, folder: Path) -> set[str]:
        data = make_data(replace(smoke_recipe(), question_weights=weights), folder)
        records = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
        return {m["content"].split("\n")[-1] for r in records if r["kind"] == "understanding" for m in r["messages"][::2]}

    assert not any(q.startswith("Is there") for q in questions({"exists": 0.0}, tmp_path / "a"))
    assert any(q.startswith("Is there") for q in questions(None, tmp_path / "b"))


def test_relation_inverse_asks_the_inverse_relation(tmp_path: Path) -> None:
    """`language.question(inverse=1)` names, for every `no` relation question, the inverse of the relation that holds;
    the default names each relation that does not hold (the inverse one time in three). `write_dataset`'s
    `relation_inverse` (what `Recipe.stage4_relation_inverse` sets for stage 4's data) reaches its records, and
    out of [0, 1] is refused before any data is written."""
    import numpy as np

    from januspro.errors import InputError
    from januspro.shapes.dataset import iter_samples, write_dataset
    from januspro.shapes.language import question
    from januspro.shapes.world import INVERSE, RELATIONS, relations_between, sample_scene

    rng = np.random.default_rng(3)
    named: dict[str, list[str]] = {"inverse": [], "default": []}
    for _ in range(150):
        scene = sample_scene(rng, "pair")
        for key, share in (("inverse", 1.0), ("default", 0.0)):
            qa = question(scene, "relation", rng, yes=False, inverse=share)
            a, b = sorted(scene.objects, key=lambda o, text=qa.question: text.index(o.name))  # as the question names them
            held = relations_between(a.center, b.center)[0]
            said = next(r for r in RELATIONS if f" {r} " in qa.question)
            assert qa.answer == "no" and said != held
            named[key].append("inverse" if said == INVERSE[held] else "other")
    assert set(named["inverse"]) == {"inverse"}
    assert 0.2 < named["default"].count("inverse") / 150 < 0.47

    manifest = write_dataset(tmp_path / "a", seed=5, n_t2i=0, n_understanding=200, n_text=0, questions_per_image=1,
                             question_weights={t: 0.0 for t in ("color", "shape", "count", "position", "exists",
                                                                "describe")}, relation_inverse=1.0)
    samples = iter_samples(5)
    checked = 0
    for line in manifest.read_text().splitlines():
        record = json.loads(line)
        scene = next(samples).scene
        question_text, answer = record["messages"][0]["content"].split("\n")[-1], record["messages"][1]["content"]
        if scene.kind != "pair" or answer != "no":
            continue
        a, b = sorted(scene.objects, key=lambda o: question_text.index(o.name))
        assert f" {INVERSE[relations_between(a.center, b.center)[0]]} " in question_text
        checked += 1
    assert checked > 20
    with pytest.raises(InputError, match="relation_inverse"):
        write_dataset(tmp_path / "b", seed=5, n_t2i=0, n_understanding=4, n_text=0, relation_inverse=1.5)
    assert not (tmp_path / "b" / "manifest.jsonl").exists()


def test_recipe_vision_patch_sets_the_understanding_tokens(tmp_path: Path) -> None:
    """`Recipe.vision_patch` reaches the ViT and the prompt: 64 px images give 4 x 4 tokens at patch 16
    (the shipped recipe) and 8 x 8 at patch 8, while generation keeps its 8 x 8 VQ codes."""
    from dataclasses import replace

    from januspro.training.build import make_data, make_model
    from januspro.training.recipe import smoke_recipe

    data = make_data(smoke_recipe(), tmp_path / "data")
    for patch, tokens in ((16, 16), (8, 64)):
        janus = make_model(replace(smoke_recipe(), vision_patch=patch), data, torch.device("cpu"))
        assert janus.model.config.vision.patch_size == patch
        assert janus.processor.num_image_tokens == janus.model.config.num_image_tokens == tokens
        assert janus.model.config.num_gen_tokens == 64
        pixels = janus.processor.image_processor([torch.zeros(64, 64, 3, dtype=torch.uint8).numpy()])
        assert janus.model.encode_images(pixels).shape[1] == tokens


def test_recipe_vision_patch_must_divide_the_image() -> None:
    """A patch that does not tile the 64 px image is a clear InputError, not a shape error later."""
    from januspro.errors import InputError
    from januspro.training.recipe import bundled_config

    for bad in (0, 12, 128):
        with pytest.raises(InputError, match="vision_patch must divide the 64 px image"):
            bundled_config(768, vision_patch=bad)


def test_gen_embed_can_start_from_the_vq_codebook() -> None:
    from januspro.models.janus import JanusModel
    from januspro.testing import tiny_config
    from januspro.training.build import init_gen_embed_from_codebook

    torch.manual_seed(0)
    model = JanusModel(tiny_config())
    model.initialize_weights()
    codebook = model.gen_vision_model.quantize.codebook().detach().clone()
    assert not torch.allclose(model.gen_embed.weight, codebook)
    init_gen_embed_from_codebook(model)
    torch.testing.assert_close(model.gen_embed.weight.detach(), codebook)
    assert torch.allclose(codebook.norm(dim=-1), torch.ones(len(codebook)))  # the l2-normalised vectors the decoder reads


def test_recipe_without_stage4_skips_it(tmp_path: Path) -> None:
    """`Recipe.stage4 = None` builds the three stages only: no stage-4 data, run or ViT losses."""
    from dataclasses import replace

    from januspro.training.recipe import smoke_recipe

    recipe = replace(smoke_recipe(), stage4=None)
    out = build_bundled(tmp_path / "model", workdir=tmp_path / "work", recipe=recipe, progress=False)
    card = json.loads((out / "training.json").read_text())
    assert "stage4" not in card["seconds"] and "stage4_vit" not in card["components_final"]
    assert not (tmp_path / "work" / "data4").exists() and not (tmp_path / "work" / "stage4").exists()
    assert "decoder" in card["seconds"]  # the decoder's last fine-tune does not need stage 4


def test_the_decoder_s_last_fine_tune_changes_only_the_decoder(tmp_path: Path) -> None:
    """`Recipe.vq_decoder_final`, the build's last phase, moves the VQ decoder (and post_quant_conv) and nothing
    else: the encoder and codebook keep every image's codes, and the LLM, heads and ViT are stage 4's tensor for
    tensor. With 0 steps the build skips it. A build that finished stage 4 gains it with `--resume` (its recipe
    changed only there)."""
    from dataclasses import replace

    from januspro.training.build import _recipe_json
    from januspro.training.recipe import smoke_recipe

    recipe = replace(smoke_recipe(), vq_decoder_final=replace(smoke_recipe().vq_decoder_final, steps=0))
    work = tmp_path / "work"
    without = build_bundled(tmp_path / "without", workdir=work, recipe=recipe, progress=False)
    assert "decoder" not in json.loads((without / "training.json").read_text())["seconds"]
    state = json.loads((work / "build_state.json").read_text())
    state["recipe"] = _recipe_json(smoke_recipe())
    (work / "build_state.json").write_text(json.dumps(state))
    polished = build_bundled(tmp_path / "polished", workdir=work, smoke=True, progress=False, resume=True)
    before = januspro.load(work / "stage4", device="cpu").model.state_dict()
    after = januspro.load(work / "decoder", device="cpu").model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(("gen_vision_model.decoder.", "gen_vision_model.post_quant_conv.")) for k in moved)
    assert any(k.startswith("gen_vision_model.decoder.") for k in moved)
    exported = januspro.load(polished, device="cpu").model.state_dict()
    assert all(torch.equal(exported[k], after[k].to(torch.bfloat16).float()) for k in after)


def test_recipe_refuses_unknown_stage4_data_kinds() -> None:
    """A misspelt kind in `Recipe.stage4_data` fails when the recipe is made, not after the stages."""
    from januspro.errors import InputError
    from januspro.training.recipe import Recipe

    with pytest.raises(InputError, match="unknown record kinds \\['und'\\]"):
        Recipe(stage4_data={"t2i": 10, "und": 10})


def test_stage4_scene_weights_reach_stage_4_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Recipe.stage4_scene_weights` draws stage 4's scenes (here pairs only), and bad weights fail when the recipe
    is made."""
    from dataclasses import replace

    from januspro.errors import InputError
    from januspro.shapes.language import parse_prompt
    from januspro.training import loop
    from januspro.training.build import tune_understanding
    from januspro.training.recipe import Recipe, smoke_recipe

    monkeypatch.setattr(loop, "run_training", lambda *args, **kwargs: None)  # the data is what is checked
    for weights, kinds in (((0.0, 1.0, 0.0), {"two_objects"}), (None, {"single_object", "two_objects", "counting"})):
        recipe = smoke_recipe() if weights is None else replace(smoke_recipe(), stage4_scene_weights=weights)
        recipe = replace(recipe, stage4_data={"t2i": 60, "understanding": 0, "text": 0})
        tune_understanding(recipe, None, tmp_path / str(weights), progress=False)
        records = (tmp_path / str(weights) / "data4" / "manifest.jsonl").read_text().splitlines()
        assert {parse_prompt(json.loads(line)["prompt"]).category for line in records} == kinds
    for bad in ((1.0, 1.0), (0.0, 0.0, 0.0), (1.0, -1.0, 1.0)):
        with pytest.raises(InputError, match="stage4_scene_weights"):
            Recipe(stage4_scene_weights=bad)  # type: ignore[arg-type]


def test_trained_vit_stage4_changes_only_stage_4() -> None:
    from dataclasses import replace

    from januspro.training.recipe import Recipe, with_trained_vit_stage4

    recipe = Recipe()
    trained = with_trained_vit_stage4(recipe)
    assert "vision_model" not in recipe.stage4.trainable and "vision_model" not in recipe.stage4.lr_overrides
    assert "vision_model" in trained.stage4.trainable and trained.stage4.lr_overrides["vision_model"] == 3e-4
    assert set(trained.stage4.trainable) == set(recipe.stage4.trainable) | {"vision_model"}
    assert recipe.stage4_vit.dense_geometry and not trained.stage4_vit.dense_geometry
    assert (recipe.stage4_vit.steps, recipe.stage4_vit.lr, recipe.stage4_vit_images) == (4500, 1e-3, 48000)
    assert (trained.stage4_vit.steps, trained.stage4_vit.lr, trained.stage4_vit_images) == (3000, 5e-4, 12000)
    # Stages 0-3 and their components are untouched (so a build keeps the same binding draw).
    assert trained.stage4_understanding is None  # that stage 4 had no understanding-only stage before it
    assert replace(trained, stage4_vit=recipe.stage4_vit, stage4_vit_images=recipe.stage4_vit_images,
                   stage4_understanding=recipe.stage4_understanding, stage4=recipe.stage4) == recipe


class Interrupted(Exception):
    pass


def test_an_interrupted_build_resumes_to_the_same_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build stopped in any phase (components, mid-stage, stage 4's ViT part, mid stage 4) and resumed with
    `resume=True`, as often as it takes, makes bit for bit the model of an uninterrupted build: each finished
    phase's checkpoint and RNG state, and the stages' own checkpoints, carry everything the rest depends on."""
    import januspro.training.build as build
    import januspro.training.loop as loop
    from januspro.errors import InputError
    from januspro.training.loop import STATE_FILE

    straight = build_bundled(tmp_path / "straight", workdir=tmp_path / "work-straight", smoke=True, progress=False)

    def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise Interrupted

    def checkpoints_then_fail(after: int):  # noqa: ANN202
        calls = []
        original = loop._checkpoint

        def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            original(*args, **kwargs)
            calls.append(1)
            if len(calls) == after:
                raise Interrupted
        return wrapped

    out, work = tmp_path / "resumed", tmp_path / "work"
    with pytest.raises(InputError, match="nothing to resume"):
        build_bundled(out, workdir=work, smoke=True, progress=False, resume=True)
    monkeypatch.setattr(build, "STAGE_SAVE_EVERY", 1)  # the stages checkpoint every step
    breaks = [
        (build, "train_vit", fail),  # in the components
        (loop, "_checkpoint", checkpoints_then_fail(3)),  # in stage 1, after its first step's checkpoint
        (build, "train_stage4_vit", fail),  # after the stages
        (loop, "_checkpoint", checkpoints_then_fail(1)),  # in stage 4, after its first step
    ]
    for number, (module, name, replacement) in enumerate(breaks):
        with monkeypatch.context() as patch:
            patch.setattr(module, name, replacement)
            with pytest.raises(Interrupted):
                build_bundled(out, workdir=work, smoke=True, progress=False, resume=number > 0)
    state = json.loads((work / "build_state.json").read_text())
    assert state["done"] == ["data", "tokenizer", "components", "stages", "stage4_vit"]
    assert (work / "stage4" / STATE_FILE).exists()  # stopped inside stage 4
    with pytest.raises(InputError, match="another recipe"):
        build_bundled(out, workdir=work, smoke=True, seed=1, progress=False, resume=True)
    build_bundled(out, workdir=work, smoke=True, progress=False, resume=True)

    for folder in ("train", "stage4", "decoder"):  # the fp32 weights after the stages, stage 4 and the decoder
        a = januspro.load(tmp_path / "work-straight" / folder, device="cpu").model.state_dict()
        b = januspro.load(work / folder, device="cpu").model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), folder
    a, b = (januspro.load(path, device="cpu").model.state_dict() for path in (straight, out))
    assert all(torch.equal(a[k], b[k]) for k in a)
    card = json.loads((out / "training.json").read_text())
    assert set(card["components_final"]) == {"vq", "vq_blank_codes", "vq_decoder", "siglip", "stage4_vit",
                                             "vq_decoder_final"}
    stages = [line.split(",")[0] for line in (work / "train" / "loss.csv").read_text().splitlines()[1:]]
    assert stages == [line.split(",")[0] for line in
                      (tmp_path / "work-straight" / "train" / "loss.csv").read_text().splitlines()[1:]]
    (work / "decoder" / build.RNG_STATE).unlink()  # a work folder damaged by hand (its latest phase)
    with pytest.raises(InputError, match="holds no finished phase"):
        build_bundled(out, workdir=work, smoke=True, progress=False, resume=True)
    (work / "build_state.json").write_text(json.dumps({"recipe": state["recipe"], "done": []}))
    with pytest.raises(InputError, match="is not a build state"):
        build_bundled(out, workdir=work, smoke=True, progress=False, resume=True)
