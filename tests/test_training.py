"""Training pipeline: data validation, sequence layout and masking, freezing, exact resume,
LoRA, and data parallelism equal to one process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

import januspro
from januspro.training.config import LoraConfig, StageConfig, TrainConfig, preset_stage
from januspro.training.data import IGNORE, DataError, Record, SequenceEncoder, read_records
from januspro.training.loop import run_training

COLORS = {"red": (220, 38, 38), "blue": (37, 99, 235), "green": (22, 163, 74)}


def write_dataset(folder: Path, n: int = 12) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        name = list(COLORS)[i % 3]
        image = Image.new("RGB", (64, 64), "white")
        x = 4 + 3 * i
        ImageDraw.Draw(image).rectangle([x, x, x + 18, x + 18], fill=COLORS[name])
        image.save(folder / "images" / f"{i}.png")
        lines.append({"kind": "t2i", "prompt": f"a {name} square", "image": f"images/{i}.png"})
        lines.append({"kind": "understanding", "images": [f"images/{i}.png"], "messages": [
            {"role": "user", "content": "<image_placeholder>\nWhat color is the square?"},
            {"role": "assistant", "content": name},
            {"role": "user", "content": "Describe the image."},
            {"role": "assistant", "content": f"a {name} square"}]})
        lines.append({"kind": "text", "text": f"the square is {name}"})
    (folder / "manifest.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"))


def small_stage(name: str, steps: int = 3, **changes) -> StageConfig:
    return preset_stage(name, steps=steps, batch_size=4, warmup_steps=1, **changes)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return januspro.load(path, device="cpu").model.state_dict()


def test_bad_records_are_reported_with_file_and_line(tmp_path: Path, dataset: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = (dataset / "manifest.jsonl").read_text().splitlines()[0].replace("images/", str(dataset / "images") + "/")
    bad.write_text("\n".join([good, "{not json", json.dumps({"kind": "t2i", "prompt": "x", "image": "missing.png"}),
                              json.dumps({"kind": "understanding", "images": [], "messages": [{"role": "assistant", "content": "x"}]})]) + "\n")
    records = read_records([bad])
    assert len(records) == 1
    with pytest.raises(DataError, match=r"bad\.jsonl:2: malformed JSON"):
        read_records([bad], strict=True)
    with pytest.raises(DataError, match="does not exist"):
        read_records([tmp_path / "nope"])


def test_sequence_layout_and_masks(tiny_janus, dataset: Path) -> None:
    records = read_records([dataset])
    processor = tiny_janus.processor
    special = processor.tokenizer.special
    encoder = SequenceEncoder(processor)
    understanding = next(r for r in records if r.kind == "understanding")
    seq = encoder.understanding(understanding)
    # The first turn's prompt is exactly what inference builds for the same question.
    question = understanding.messages[0][1]
    prompt = processor.conversation([januspro.Message("user", question, understanding.images[:1])]).ids
    assert seq.ids[: len(prompt)] == prompt
    learned = [seq.ids[t + 1] for t, label in enumerate(seq.text_labels) if label != IGNORE]
    answer = processor.tokenizer.encode(" red", add_bos=False) + [special.eos]
    assert learned[: len(answer)] == answer  # only answers are learned...
    assert special.image not in learned
    assert all(seq.text_labels[t] == IGNORE for t in range(len(prompt) - 1))  # ...not the prompt
    assert learned.count(special.eos) == 2  # both turns end with EOS

    # An image-free conversation (the shapes dataset's paragraph chats) renders, with the empty system
    # prompt, exactly the generation prompt of its user turn up to <begin_of_image>.
    chat = Record("understanding", messages=(("user", "a red circle above a blue square"),
                                             ("assistant", "the square is blue")))
    seq = SequenceEncoder(processor, "").understanding(chat)
    generation = processor.generation_prompt("a red circle above a blue square")
    assert seq.ids[: len(generation) - 1] == generation[:-1] and generation[-1] == special.boi
    learned = [seq.ids[t + 1] for t, label in enumerate(seq.text_labels) if label != IGNORE]
    assert learned == processor.answer_ids("the square is blue")

    t2i = next(r for r in records if r.kind == "t2i")
    codes = list(range(tiny_janus.config.num_gen_tokens))
    seq = encoder.t2i(t2i, codes, unconditional=False)
    start = len(processor.generation_prompt(t2i.prompt))
    assert [label for label in seq.image_labels if label != IGNORE] == codes
    assert seq.image_labels[start - 1] == codes[0] and seq.code_positions[0] == start
    uncond = encoder.t2i(t2i, codes, unconditional=True)
    assert uncond.ids[1 : start - 1] == [special.pad] * (start - 2)
    assert uncond.ids[start - 1] == special.boi


def test_stage1_freezes_llm_and_encoders(tmp_path: Path, tiny_checkpoint: Path, dataset: Path) -> None:
    config = TrainConfig(data=(str(dataset),), out=str(tmp_path / "out"), stages=(small_stage("stage1"),),
                         init=str(tiny_checkpoint))
    out = run_training(config, progress=False)
    before, after = weights(tiny_checkpoint), weights(out)
    for name in before:
        changed = not torch.equal(before[name], after[name])
        trained = name.split(".")[0] in ("aligner", "gen_embed", "gen_aligner", "gen_head")
        if name.endswith("codebook_used"):
            continue
        assert changed == trained, name
    assert (out / "loss.csv").exists() and (out / "loss.png").exists()


def test_micro_batches_grouped_by_kind_give_the_same_step(tmp_path: Path, tiny_checkpoint: Path, dataset: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from januspro.training import loop

    picks = [("t2i", 0, False), ("text", 1, False), ("understanding", 2, False), ("t2i", 3, True), ("text", 4, False)]
    grouped = loop.micro_batches(picks, 2, by_kind=True)
    assert grouped == [[("text", 4, False)], [("understanding", 2, False)], [("t2i", 0, False)],
                       [("text", 1, False)], [("t2i", 3, True)]]  # per micro-batch: text, understanding, t2i
    assert loop.micro_batches(picks, 2, by_kind=False) == [picks[0::2], picks[1::2]]

    stage = preset_stage("stage3", steps=2, batch_size=9, warmup_steps=1)  # every kind in each step
    runs = {}
    original = loop.micro_batches
    for by_kind in (True, False):
        monkeypatch.setattr(loop, "micro_batches", lambda p, g, by_kind, _k=by_kind: original(p, g, _k))
        config = TrainConfig(data=(str(dataset),), out=str(tmp_path / str(by_kind)), stages=(stage,), init=str(tiny_checkpoint))
        runs[by_kind] = weights(run_training(config, progress=False))
    for name in runs[True]:
        torch.testing.assert_close(runs[True][name], runs[False][name], rtol=1e-5, atol=1e-6)


class Crash(Exception):
    pass


def test_resume_gives_the_same_losses_and_weights(tmp_path: Path, tiny_checkpoint: Path, dataset: Path) -> None:
    # Stage 3 keeps a weight average: the resumed run must restore it too.
    stages = (small_stage("stage2", steps=2), small_stage("stage3", steps=3, grad_accum=2, ema_decay=0.9))
    straight: list[dict] = []
    config = TrainConfig(data=(str(dataset),), out=str(tmp_path / "a"), stages=stages, init=str(tiny_checkpoint))
    run_training(config, progress=False, on_step=straight.append)

    resumed: list[dict] = []

    def crash_at_fourth_step(row: dict) -> None:
        if len(resumed) == 3:
            raise Crash  # dies mid-stage, after the third step's checkpoint
        resumed.append(row)

    config_b = TrainConfig(data=(str(dataset),), out=str(tmp_path / "b"), stages=stages, init=str(tiny_checkpoint), save_every=1)
    with pytest.raises(Crash):
        run_training(config_b, progress=False, on_step=crash_at_fourth_step)
    with pytest.raises(januspro.InputError, match="--resume"):
        run_training(config_b, progress=False)
    run_training(config_b, resume=True, progress=False, on_step=resumed.append)

    def flat(rows: list[dict]) -> list[float]:
        return [v for r in rows for v in (r["stage"], r["step"], r["text_loss"], r["image_loss"])]

    assert len(resumed) == len(straight) == 5
    torch.testing.assert_close(torch.tensor(flat(resumed)), torch.tensor(flat(straight)), rtol=1e-6, atol=1e-7, equal_nan=True)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-7)
    rows = (tmp_path / "b" / "loss.csv").read_text().splitlines()
    assert len(rows) == 1 + 5  # header + each step once, even though step 4 ran twice


def test_weight_average_ends_the_stage_on_the_average_of_its_steps(tmp_path: Path, tiny_checkpoint: Path,
                                                                   dataset: Path) -> None:
    """The raw run's weights after each step, averaged by hand, are what the EMA run saves."""
    import shutil

    steps: list[dict[str, torch.Tensor]] = [weights(tiny_checkpoint)]
    raw_out = tmp_path / "raw"

    def keep_last_checkpoint(row: dict) -> None:  # called before this step's checkpoint: the previous one is on disk
        if row["step"] > 1:
            shutil.copytree(raw_out, tmp_path / f"step{row['step'] - 1}", ignore=shutil.ignore_patterns(".saving"))
            steps.append(weights(tmp_path / f"step{row['step'] - 1}"))

    raw = TrainConfig(data=(str(dataset),), out=str(raw_out), stages=(small_stage("stage1", steps=3, lr=1e-2),),
                      init=str(tiny_checkpoint), save_every=1)
    steps.append(weights(run_training(raw, progress=False, on_step=keep_last_checkpoint)))
    averaged = TrainConfig(data=(str(dataset),), out=str(tmp_path / "ema"), init=str(tiny_checkpoint),
                           stages=(small_stage("stage1", steps=3, lr=1e-2, ema_decay=0.5),))
    result = weights(run_training(averaged, progress=False))
    trained = ("aligner.", "gen_embed.", "gen_aligner.", "gen_head.")
    for name, value in result.items():
        expected = steps[0][name] if name.startswith(trained) else steps[3][name]  # (frozen: as in the raw run)
        if name.startswith(trained):
            for t in (1, 2, 3):
                decay = min(0.5, (1 + t) / (10 + t))
                expected = decay * expected + (1 - decay) * steps[t][name]
            assert not torch.equal(value, steps[3][name]), name  # the average, not the last step
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6, msg=name)
    with pytest.raises(januspro.InputError, match="ema_decay"):
        small_stage("stage1", ema_decay=1.0)


def test_lora_trains_adapters_and_saves_a_merged_model(tmp_path: Path, tiny_checkpoint: Path, dataset: Path) -> None:
    config = TrainConfig(data=(str(dataset),), out=str(tmp_path / "lora"),
                         stages=(small_stage("stage2", steps=2, lr=1e-2),), init=str(tiny_checkpoint),
                         lora=LoraConfig(rank=4, alpha=8, targets=("q_proj", "v_proj")))
    out = run_training(config, progress=False)
    before, after = weights(tiny_checkpoint), weights(out)
    assert set(before) == set(after)  # an ordinary checkpoint: no adapter tensors
    q = "language_model.model.layers.0.self_attn.q_proj.weight"
    k = "language_model.model.layers.0.self_attn.k_proj.weight"
    assert not torch.equal(before[q], after[q])  # merged adapters changed q
    assert torch.equal(before[k], after[k])  # k had no adapter and the LLM weights are frozen


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(nproc: int, config: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}",
           "-m", "januspro.cli", "train", "--config", str(config), "--quiet", "--device", "cpu"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_train_the_same_model_as_one(tmp_path: Path, tiny_checkpoint: Path, dataset: Path, strategy: str) -> None:
    from januspro.training.data import MixedSampler, read_records
    from januspro.training.loop import micro_batches

    stage = small_stage("stage3", steps=2, grad_accum=2, ema_decay=0.5)  # the averages too (sharded under FSDP)
    if strategy == "ddp":
        # 6 rows per process in 2 micro-batches, each split by kind: the two processes run different numbers of
        # micro-batches in a step (checked here), which DDP must allow.
        stage = replace(stage, batch_size=12)
        records = read_records([dataset])
        counts_by_kind = {kind: sum(r.kind == kind for r in records) for kind in ("text", "understanding", "t2i")}
        sampler = MixedSampler(counts_by_kind, stage.mix, stage.seed, stage.uncond_prob)
        counts = [[len(micro_batches(sampler.batch(step, 12)[rank::2], 2, by_kind=True)) for rank in (0, 1)]
                  for step in range(stage.steps)]
        assert any(a != b for a, b in counts), counts
    results = {}
    for nproc in (1, 2):
        config = TrainConfig(data=(str(dataset),), out=str(tmp_path / f"p{nproc}"), stages=(stage,),
                             init=str(tiny_checkpoint), strategy=strategy, save_every=1)
        path = tmp_path / f"config{nproc}.json"
        config.save(path)
        _torchrun(nproc, path)
        results[nproc] = weights(tmp_path / f"p{nproc}")
    for name in results[1]:
        torch.testing.assert_close(results[2][name], results[1][name], rtol=1e-4, atol=1e-5)


def test_vq_trainer_warms_up_then_initialises_the_codebook_by_kmeans() -> None:
    """Warm-up trains without the quantiser (the codebook is untouched and has no loss); at its
    end the codebook is fitted to the encoder's latents, which lowers their quantisation error."""
    from januspro.models.janus import JanusModel
    from januspro.testing import tiny_config
    from januspro.training.components import ComponentTrainConfig, _latents, train_vq

    torch.manual_seed(0)
    model = JanusModel(tiny_config())
    model.initialize_weights()
    vq = model.gen_vision_model
    size = model.config.gen_vision.image_size
    images = torch.rand(16, 3, size, size) * 2 - 1
    initial = vq.quantize.embedding.weight.detach().clone()

    def error(codebook: torch.Tensor) -> float:  # mean distance of each latent to its nearest code
        with torch.no_grad():
            points = _latents(vq, images).permute(0, 2, 3, 1).reshape(-1, codebook.shape[1])
        codes = torch.nn.functional.normalize(codebook, dim=1) if vq.quantize.l2_norm else codebook
        return float(torch.cdist(points, codes).min(dim=1).values.mean())

    snapshots: list[torch.Tensor] = []
    errors: dict[str, float] = {}

    def on_step(row: dict[str, float]) -> None:
        snapshots.append(vq.quantize.embedding.weight.detach().clone())
        if row["step"] == 3:  # the last warm-up step, after the codebook was fitted
            errors["random"], errors["fitted"] = error(initial), error(snapshots[-1])

    history = train_vq(vq, images, ComponentTrainConfig(steps=6, batch_size=4, warmup_steps=1, restart_dead_every=1),
                       warmup_fraction=0.5, on_step=on_step, progress=False)
    assert len(history) == 6 and all(math.isfinite(row["loss"]) for row in history)
    assert [row["codebook"] == 0 for row in history] == [True, True, True, False, False, False]
    assert torch.equal(snapshots[0], initial) and torch.equal(snapshots[1], initial)
    assert not torch.equal(snapshots[2], initial)
    assert errors["fitted"] < errors["random"]
    assert not vq.training


def test_vq_edge_weight_marks_outlines_and_raises_their_loss() -> None:
    """`_edges` marks the pixels on both sides of a colour boundary and nothing in flat regions;
    with `edge_weight` the reconstruction loss of the same model on the same batch grows by the
    extra weight on those pixels (and equals the plain loss on a flat image, which has none)."""
    from januspro.models.janus import JanusModel
    from januspro.testing import tiny_config
    from januspro.training.components import ComponentTrainConfig, _edges, train_vq

    size = tiny_config().gen_vision.image_size
    image = torch.ones(1, 3, size, size)
    image[:, :, 4:8, 4:8] = -1  # a dark 4 x 4 square on white
    edges = _edges(image)[0, 0]
    assert edges.shape == (size, size)
    assert edges[3:9, 3:9].sum() == 6 * 6 - 2 * 2 and edges[5:7, 5:7].sum() == 0  # a 2 px ring, hollow inside
    assert edges.sum() == edges[3:9, 3:9].sum()  # flat white elsewhere
    assert _edges(torch.ones(2, 3, size, size)).sum() == 0

    def first_loss(images: torch.Tensor, weight: float) -> float:
        torch.manual_seed(0)
        model = JanusModel(tiny_config())
        model.initialize_weights()
        config = ComponentTrainConfig(steps=1, batch_size=2, warmup_steps=1, edge_weight=weight)
        return train_vq(model.gen_vision_model, images, config, warmup_fraction=1.0, progress=False)[0]["loss"]

    shapes = image.expand(2, -1, -1, -1).contiguous()
    assert first_loss(shapes, 4.0) > first_loss(shapes, 0.0) * 1.05
    flat = torch.ones(2, 3, size, size)
    assert first_loss(flat, 4.0) == pytest.approx(first_loss(flat, 0.0))


def test_vq_latent_color_loss_is_added_and_trains_the_encoder() -> None:
    """With `latent_color_weight` the loss is the plain loss plus weight x the colour-reading
    loss (same model, same batch), and that term's gradient reaches the encoder: after one step
    its weights differ from a run without it. The head draws no numbers from the global
    generator, so what the caller draws next is the same either way."""
    from januspro.models.janus import JanusModel
    from januspro.testing import tiny_config
    from januspro.training.components import ComponentTrainConfig, train_vq

    size = tiny_config().gen_vision.image_size
    images = torch.ones(4, 3, size, size)
    images[0, :, 2:10, 2:10] = torch.tensor([0.7, -0.7, -0.7])[:, None, None]  # red-ish square
    images[1, :, 12:20, 6:14] = torch.tensor([0.8, 0.4, -0.9])[:, None, None]  # yellow-ish square

    def run(weight: float) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        model = JanusModel(tiny_config())
        model.initialize_weights()
        vq = model.gen_vision_model
        config = ComponentTrainConfig(steps=1, batch_size=4, warmup_steps=1, latent_color_weight=weight)
        row = train_vq(vq, images, config, warmup_fraction=1.0, progress=False)[0]
        return row, vq.encoder.conv_in.weight.detach().clone(), torch.rand(4)

    plain, encoder_plain, next_plain = run(0.0)
    colour, encoder_colour, next_colour = run(2.0)
    assert torch.equal(next_plain, next_colour)
    assert "latent_color" not in plain and colour["latent_color"] > 0
    assert colour["loss"] == pytest.approx(plain["loss"] + 2.0 * colour["latent_color"], rel=1e-5)
    assert not torch.allclose(encoder_plain, encoder_colour)


def test_blank_patch_codes_name_white_patches_by_position() -> None:
    """After `tag_blank_patches` every pure-white patch encodes to its grid position's own code
    (copied from a code a white patch had, so it decodes alike), no other patch takes one of
    those codes, the encoder and the other codes are untouched, the decoder is fine-tuned, and
    the config carrying the codes survives config.json."""
    from januspro.config import JanusConfig
    from januspro.errors import ConfigError, InputError
    from januspro.models.janus import JanusModel
    from januspro.models.vq import blank_patches
    from januspro.testing import tiny_config
    from januspro.training.components import ComponentTrainConfig, tag_blank_patches, train_vq

    torch.manual_seed(0)
    model = JanusModel(tiny_config(codebook=256))
    model.initialize_weights()
    vq = model.gen_vision_model
    size, patch, tokens = vq.config.image_size, vq.config.downsample, vq.config.num_image_tokens
    images = torch.ones(12, 3, size, size)
    for i in range(12):  # one dark square per image, covering patch i and part of its right neighbour
        row, col = divmod(i * 5, size // patch)
        images[i, :, row * patch:(row + 1) * patch, col * patch:col * patch + patch + 2] = -0.5
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    with torch.no_grad():
        plain_codes = vq.encode(images).codes
    history = tag_blank_patches(vq, images, ComponentTrainConfig(steps=2, batch_size=4, warmup_steps=1),
                                progress=False)
    assert len(history) == 2 and not vq.training
    tags = torch.tensor(vq.config.blank_patch_codes)
    assert tags.shape == (tokens,) and tags.unique().numel() == tokens
    weight = vq.quantize.embedding.weight
    assert not torch.isin(tags, plain_codes[blank_patches(images, patch)]).any()  # a copy, not a used code
    others = torch.ones(256, dtype=torch.bool)
    others[tags] = False
    assert torch.equal(weight[others], before["quantize.embedding.weight"][others])
    assert all(torch.equal(vq.state_dict()[k], v) for k, v in before.items() if k.startswith("encoder."))
    assert not torch.equal(vq.state_dict()["decoder.conv_out.weight"], before["decoder.conv_out.weight"])
    with torch.no_grad():
        codes = vq.encode(images).codes
    blank = blank_patches(images, patch)
    assert blank.float().mean() > 0.5 and not blank.all()
    assert torch.equal(codes[blank], tags.expand_as(codes)[blank])
    assert not torch.isin(codes[~blank], tags).any()
    assert torch.equal(codes[~blank], plain_codes[~blank])  # the others keep their codes
    for t in range(tokens):  # each position code is a copy of a code some white patch had
        assert any(torch.equal(weight[tags[t]], weight[c]) for c in plain_codes[:, t].unique() if c != tags[t])

    config = JanusConfig.from_dict(replace(model.config, gen_vision=vq.config).to_dict())
    assert config.gen_vision.blank_patch_codes == vq.config.blank_patch_codes
    assert "blank_patch_codes" not in tiny_config().to_dict()["gen_vision_config"]["params"]
    with pytest.raises(ConfigError, match="blank_patch_codes"):
        replace(model.config, gen_vision=replace(vq.config, blank_patch_codes=(1, 2, 3))).validate()
    with pytest.raises(InputError, match="already"):
        tag_blank_patches(vq, images, ComponentTrainConfig(steps=1), progress=False)
    with pytest.raises(InputError, match="before tag_blank_patches"):
        train_vq(vq, images, ComponentTrainConfig(steps=1), progress=False)
    small = JanusModel(tiny_config(codebook=64)).gen_vision_model
    with pytest.raises(InputError, match="too small"):
        tag_blank_patches(small, images, ComponentTrainConfig(steps=1), progress=False)
    with pytest.raises(InputError, match="no blank"):
        tag_blank_patches(JanusModel(tiny_config(codebook=256)).gen_vision_model, -images,
                          ComponentTrainConfig(steps=1), progress=False)


def test_tune_vq_decoder_trains_the_decoder_on_frozen_codes() -> None:
    """`tune_vq_decoder` changes the decoder and post_quant_conv only: encoder, quant_conv and
    codebook stay, so every image keeps its codes (a language model trained on them stays valid);
    the reconstruction gets better; edge_weight weighs outline pixels more."""
    from januspro.errors import InputError
    from januspro.models.janus import JanusModel
    from januspro.testing import tiny_config
    from januspro.training.components import ComponentTrainConfig, tune_vq_decoder

    torch.manual_seed(0)
    vq = JanusModel(tiny_config(codebook=64)).gen_vision_model
    size = vq.config.image_size
    images = torch.ones(8, 3, size, size)
    for i in range(8):  # one coloured square per image
        x = 2 + 3 * i
        images[i, i % 3, x:x + size // 3, x:x + size // 3] = -1.0
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    with torch.no_grad():
        codes = vq.encode(images).codes
    config = ComponentTrainConfig(steps=40, batch_size=8, lr=3e-3, warmup_steps=2)
    history = tune_vq_decoder(vq, images, config, progress=False)
    assert len(history) == 40 and not vq.training
    assert not any(p.requires_grad for p in vq.parameters())
    assert history[-1]["mse"] < 0.5 * history[0]["mse"]
    after = {k: v.clone() for k, v in vq.state_dict().items()}
    for key, value in before.items():
        assert torch.equal(after[key], value) != key.startswith(("decoder.", "post_quant_conv.")), key
    assert not torch.equal(after["decoder.conv_out.weight"], before["decoder.conv_out.weight"])
    with torch.no_grad():
        assert torch.equal(vq.encode(images).codes, codes)

    one = replace(config, steps=1)
    plain = tune_vq_decoder(vq, images, one, codes=codes, progress=False)[0]
    vq.load_state_dict(after)
    edged = tune_vq_decoder(vq, images, replace(one, edge_weight=3.0), codes=codes, progress=False)[0]
    assert edged["mse"] == pytest.approx(plain["mse"])  # same model, same batch
    assert edged["loss"] > 1.5 * plain["loss"]  # the outline pixels carry most of the error
    with pytest.raises(InputError, match="code rows"):
        tune_vq_decoder(vq, images, one, codes=codes[:3], progress=False)


def test_vq_loss_weights_must_not_be_negative() -> None:
    from januspro.errors import InputError
    from januspro.training.components import ComponentTrainConfig

    for bad in ({"edge_weight": -1.0}, {"latent_color_weight": -0.5}):
        with pytest.raises(InputError, match="must be >= 0"):
            ComponentTrainConfig(**bad)
    for silent in ({"dense_geometry": True}, {"dense_relations": True}):  # would be ignored without the dense loss
        with pytest.raises(InputError, match="need dense_weight > 0"):
            ComponentTrainConfig(**silent)
    assert ComponentTrainConfig(dense_weight=1.0, dense_geometry=True, dense_relations=True).dense_relations


def test_siglip_trainer_scores_every_image_against_every_phrase() -> None:
    """Phrases true of several images are positives for all of them: a tiny ViT learns which
    of two kinds of image each phrase describes, and scores a phrase true of every image as
    positive for all of them (every pair right at the end)."""
    from januspro.models.janus import JanusModel
    from januspro.testing import tiny_config
    from januspro.training.components import ComponentTrainConfig, train_siglip

    torch.manual_seed(0)
    model = JanusModel(tiny_config())
    model.initialize_weights()
    vit = model.vision_model.vision_tower
    size = model.config.vision.image_size
    kinds = torch.arange(32) % 2
    pixels = torch.randn(32, 3, size, size) * 0.1
    pixels[kinds == 0, 0] += 1.0  # kind 0 is reddish, kind 1 bluish
    pixels[kinds == 1, 2] += 1.0
    phrases = [[5, 6], [5, 7], [8]]  # "a red thing", "a blue thing", "a thing"
    positives = [[int(k), 2] for k in kinds]
    history = train_siglip(vit, pixels, phrases, positives, model.config.language.vocab_size,
                           ComponentTrainConfig(steps=40, batch_size=16, lr=3e-3, warmup_steps=5), progress=False)
    assert all(math.isfinite(row["loss"]) for row in history)
    assert min(row["pair_acc"] for row in history[-5:]) == 1.0
    assert not vit.training
    with pytest.raises(ValueError, match="positive phrase"):
        train_siglip(vit, pixels, phrases, [[0]] * 31 + [[]], model.config.language.vocab_size,
                     ComponentTrainConfig(steps=1), progress=False)


def test_image_free_conversations_train_the_llm_only(tiny_janus, tmp_path: Path) -> None:
    """An understanding record without images (a text-only chat) is read, encoded and learned: its
    answer gives a text loss whose gradient reaches the LLM, while the ViT and aligner get none."""
    import copy

    from januspro.engine import undo_inference_layout
    from januspro.training.losses import JanusObjective
    from januspro.training.pool import DataPool

    chat = {"kind": "understanding", "images": [], "messages": [
        {"role": "user", "content": "a red circle above a blue square"},
        {"role": "assistant", "content": "the square is blue"}]}
    (tmp_path / "chat.jsonl").write_text(json.dumps(chat) + "\n")
    records = read_records([tmp_path], strict=True)
    assert [(r.kind, r.images) for r in records] == [("understanding", ())]
    model = copy.deepcopy(tiny_janus.model)
    undo_inference_layout(model)
    model.float().train()
    pool = DataPool(records, tiny_janus.processor, model)
    batch = pool.batch([("understanding", 0, False)], SequenceEncoder(tiny_janus.processor, ""))
    assert batch.pixels.shape[0] == 0 and batch.text_tokens == len(tiny_janus.processor.answer_ids("the square is blue"))
    text_sum, image_sum = JanusObjective(model)(batch)
    assert float(text_sum.detach()) > 0 and float(image_sum.detach()) == 0
    text_sum.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.language_model.parameters())
    assert all(p.grad is None or not p.grad.any() for p in model.vision_model.parameters())


def test_siglip_trainer_dense_loss_teaches_each_patch_what_it_shows() -> None:
    """With patch targets and dense_weight the trainer adds a per-patch loss that falls as the
    ViT learns which patches hold the bright square; without dense_weight it is not computed."""
    from januspro.models.janus import JanusModel
    from januspro.testing import tiny_config
    from januspro.training.components import ComponentTrainConfig, train_siglip

    torch.manual_seed(0)
    model = JanusModel(tiny_config())
    model.initialize_weights()
    vit = model.vision_model.vision_tower
    size, patch = model.config.vision.image_size, model.config.vision.patch_size
    grid = size // patch
    pixels = torch.randn(32, 3, size, size) * 0.1
    targets = torch.zeros(32, grid * grid, 1)
    for i in range(32):  # one bright patch per image, at a random place
        row, col = divmod(i * 7 % (grid * grid), grid)
        pixels[i, :, row * patch:(row + 1) * patch, col * patch:(col + 1) * patch] += 1.0
        targets[i, row * grid + col, 0] = 1.0
    phrases, positives = [[5], [6]], [[i % 2] for i in range(32)]
    config = ComponentTrainConfig(steps=60, batch_size=16, lr=3e-3, warmup_steps=5, dense_weight=1.0)
    history = train_siglip(vit, pixels, phrases, positives, model.config.language.vocab_size, config,
                           progress=False, patch_targets=targets)
    assert history[-1]["patch_loss"] < 0.25 * history[0]["patch_loss"]
    assert history[-1]["loss"] == pytest.approx(history[-1]["contrastive"] + history[-1]["patch_loss"], rel=1e-5)
    plain = train_siglip(vit, pixels, phrases, positives, model.config.language.vocab_size,
                         replace(config, steps=2, dense_weight=0.0), progress=False, patch_targets=targets)
    assert "patch_loss" not in plain[-1]
    with pytest.raises(ValueError, match="patch_targets"):
        train_siglip(vit, pixels, phrases, positives, model.config.language.vocab_size, config, progress=False,
                     patch_targets=targets[:, :1])
    with pytest.raises(ValueError, match="needs patch_targets"):
        train_siglip(vit, pixels, phrases, positives, model.config.language.vocab_size, config, progress=False)
    with pytest.raises(januspro.InputError, match="dense_weight"):
        ComponentTrainConfig(dense_weight=-1.0)


def test_weight_averages_of_other_parameters_are_refused() -> None:
    from januspro.errors import CheckpointError
    from januspro.training.ema import WeightAverage

    average = WeightAverage({"w": torch.nn.Parameter(torch.zeros(2))}, 0.9)
    with pytest.raises(CheckpointError, match="do not match the parameters"):
        average.load_state_dict({"v": torch.zeros(2)})
    average.load_state_dict({"w": torch.ones(2)})
    average.copy_to_params()
    assert torch.equal(average.params["w"].detach(), torch.ones(2))


def test_train_vq_decoder_command_tunes_only_the_decoder(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """`januspro train vq-decoder` writes a loadable checkpoint whose decoder changed and whose
    every other weight (encoder, codebook, LLM, heads) is the input's, stored in the input's
    dtype, with a card; bad inputs fail with one line."""
    import januspro
    from januspro.cli import main
    from januspro.loading import iter_tensors, weight_files
    from januspro.shapes.dataset import write_dataset
    from januspro.training.vq_decoder import CARD_FILE

    data = write_dataset(tmp_path / "data", seed=3, n_t2i=6, n_understanding=2, n_text=2).parent
    out = tmp_path / "tuned"
    code = main(["train", "vq-decoder", "--model", str(tiny_checkpoint), "--data", str(data), "--out", str(out),
                 "--steps", "3", "--batch-size", "4", "--lr", "1e-3", "--quiet", "--device", "cpu"])
    assert code == 0 and capsys.readouterr().out.strip() == str(out)
    before = dict(iter_tensors(weight_files(tiny_checkpoint)))
    after = dict(iter_tensors(weight_files(out)))
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("gen_vision_model.decoder.", "gen_vision_model.post_quant_conv.")) for k in changed)
    assert all(after[k].dtype == before[k].dtype for k in before)
    card = json.loads((out / CARD_FILE).read_text())
    assert card["images"] == 6 and card["config"]["steps"] == 3 and card["config"]["edge_weight"] == 4.0
    assert januspro.load(out, device="cpu").generate_images("a red circle", januspro.ImageOptions(n=1, seed=0)).images

    text_only = write_dataset(tmp_path / "text", seed=3, n_t2i=0, n_understanding=0, n_text=2).parent
    for args, message in (
        (["--data", str(text_only), "--out", str(tmp_path / "a")], "no text-to-image records"),
        (["--data", str(data), "--out", str(out)], "is not an empty folder"),
        (["--data", str(data), "--out", str(tmp_path / "b"), "--steps", "0"], "--steps must be at least 1"),
        (["--data", str(data), "--out", str(tmp_path / "c"), "--edge-weight", "-1"], "must be >= 0"),
        (["--out", str(tmp_path / "d")], "give --data"),
    ):
        code = main(["train", "vq-decoder", "--model", str(tiny_checkpoint), "--quiet", "--device", "cpu", *args])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code != 0 and len(lines) == 1 and message in lines[0], (args, captured.err)
