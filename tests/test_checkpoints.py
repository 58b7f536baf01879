"""Loading official and transformers checkpoints: layouts, file formats, strictness, errors."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import januspro
from januspro.config import JanusConfig
from januspro.errors import CheckpointError, ConfigError, InputError, ModelNotFoundError
from januspro.models.janus import JanusModel


def manifest(reference_dir: Path, name: str) -> dict[str, tuple[int, ...]]:
    lines = (reference_dir / f"janus-pro-{name}.keys.tsv").read_text().splitlines()[1:]
    return {key: tuple(int(d) for d in shape.split("x")) for key, shape in (line.split("\t") for line in lines)}


@pytest.mark.parametrize("name,params", [("1b", 2.09e9), ("7b", 7.42e9)])
def test_meta_model_matches_the_official_manifest(reference_dir: Path, name: str, params: float) -> None:
    config = JanusConfig.from_file(reference_dir / f"janus-pro-{name}.config.json")
    with torch.device("meta"):
        model = JanusModel(config)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == manifest(reference_dir, name)
    count = sum(v.numel() for k, v in model.state_dict().items() if not k.endswith("codebook_used"))
    assert count == pytest.approx(params, rel=0.005)


def test_7b_config_relies_on_llama_defaults(reference_dir: Path) -> None:
    config = JanusConfig.from_file(reference_dir / "janus-pro-7b.config.json")
    lang = config.language
    assert (lang.hidden_size, lang.intermediate_size, lang.num_attention_heads, lang.kv_heads) == (4096, 11008, 32, 32)
    assert (lang.rms_norm_eps, lang.rope_theta, lang.tie_word_embeddings) == (1e-6, 10000.0, False)
    assert config.num_image_tokens == 576 and config.num_gen_tokens == 576
    assert config.gen_vision.image_size == 384 and config.vision.width == 1024


@pytest.mark.parametrize("name", ["1b", "7b"])
def test_official_config_round_trips(reference_dir: Path, name: str, tmp_path: Path) -> None:
    original = json.loads((reference_dir / f"janus-pro-{name}.config.json").read_text())
    config = JanusConfig.from_dict(original)
    config.save(tmp_path / "config.json")
    written = json.loads((tmp_path / "config.json").read_text())
    assert JanusConfig.from_file(tmp_path / "config.json") == config
    for key, value in original.items():  # same format: every official section unchanged...
        if key != "language_config":
            assert written[key] == value, key
    for key, value in original["language_config"].items():  # ...and the LLM section made explicit
        assert written["language_config"][key] == value


def test_random_1b_checkpoint_in_official_layout_loads_and_runs(reference_dir: Path, tmp_path_factory, tiny_checkpoint: Path) -> None:
    """Random bf16 weights in exactly the shapes of janus-pro-1b.keys.tsv, sharded safetensors
    with an index, the official config: loads strictly, answers one token, draws one code."""
    folder = tmp_path_factory.mktemp("janus-pro-1b")
    shutil.copy(reference_dir / "janus-pro-1b.config.json", folder / "config.json")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_checkpoint / name, folder / name)  # a small tokenizer: ids < 102400
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_size": 384, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    generator = torch.Generator().manual_seed(0)
    shards, weight_map, shard, size = [], {}, {}, 0
    for key, shape in manifest(reference_dir, "1b").items():
        shard[key] = torch.empty(shape, dtype=torch.bfloat16).uniform_(-0.03, 0.03, generator=generator)
        size += shard[key].numel()
        if size > 1.1e9:
            shards.append(shard)
            shard, size = {}, 0
    shards.append(shard)
    for i, tensors in enumerate(shards, 1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(tensors, str(folder / file))
        weight_map.update({k: file for k in tensors})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    del shards, shard

    # float32 on the CPU (the default there): bf16 matmuls are emulated, and far slower, on CPUs
    # without native bf16 support.
    janus = januspro.load(folder, device="cpu")
    assert janus.report.layout == "official" and janus.report.num_tensors == 882
    assert janus.dtype == torch.float32 and janus.model.language_model.model.norm.weight.dtype == torch.float32
    image = torch.randint(0, 255, (300, 200, 3), dtype=torch.uint8).numpy()
    answer = janus.chat("What is this?", images=[image], options=januspro.ChatOptions(max_new_tokens=1))
    assert len(answer.tokens) == 1 and answer.prompt_tokens > 576
    # One generation step (prefill, first code, one decode step): all 576 take minutes on a CPU.
    from januspro.generation.image import generate_image_codes
    from januspro.generation.sampling import SamplingParams

    ids = janus.processor.generation_prompt("a cat")
    codes = generate_image_codes(janus.model, ids, janus.processor.tokenizer.special.pad, n=1, cfg_weight=5.0,
                                 params=SamplingParams(1.0), seed=0, num_tokens=2)
    assert codes.shape == (1, 2) and 0 <= int(codes.min()) and int(codes.max()) < 16384


def test_transformers_layout_and_bin_files_load_to_the_same_model(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from januspro import keymap
    from januspro.testing import tiny_config, write_random_checkpoint

    # transformers ties the generated image size to the ViT's patch grid: 4 x 4 codes here.
    tiny_checkpoint = write_random_checkpoint(tmp_path / "official", tiny_config(gen_image_size=16))
    official = januspro.load(tiny_checkpoint, device="cpu")
    # Build the transformers checkpoint of the same weights by inverting our key map on names.
    hf_names: dict[str, str] = {}
    config = official.config
    hf_config = transformers.JanusConfig(
        text_config=transformers.LlamaConfig(
            vocab_size=config.language.vocab_size, hidden_size=config.language.hidden_size,
            intermediate_size=config.language.intermediate_size, num_hidden_layers=config.language.num_hidden_layers,
            num_attention_heads=config.language.num_attention_heads, max_position_embeddings=config.language.max_position_embeddings,
            tie_word_embeddings=False),
        vision_config=transformers.JanusVisionConfig(
            hidden_size=config.vision.width, num_hidden_layers=config.vision.layers, num_attention_heads=config.vision.heads,
            image_size=config.vision.image_size, patch_size=config.vision.patch_size, mlp_ratio=config.vision.mlp_ratio,
            projection_dim=config.language.hidden_size, depth=2, num_image_tokens=config.num_image_tokens),
        vq_config=transformers.JanusVQVAEConfig(
            embed_dim=8, num_embeddings=config.gen_vision.codebook_size, base_channels=config.gen_vision.ch,
            channel_multiplier=list(config.gen_vision.ch_mult), num_res_blocks=config.gen_vision.num_res_blocks,
            latent_channels=config.gen_vision.z_channels, projection_dim=config.language.hidden_size,
            num_hidden_layers=2, image_token_embed_dim=config.language.hidden_size),
        tie_word_embeddings=False,
    )
    hf = transformers.JanusForConditionalGeneration(hf_config)
    for name in hf.state_dict():
        hf_names[keymap.transformers_name(name)] = name
    ours = official.model.state_dict()
    state = {}
    for official_name, tensor in ours.items():
        if official_name.endswith(".attn.qkv.weight") or official_name.endswith(".attn.qkv.bias"):
            kind = official_name.rsplit(".", 1)[1]
            prefix = official_name[: -len(f"qkv.{kind}")]
            for part, chunk in zip("qkv", tensor.chunk(3)):
                state[hf_names[f"{prefix}{part}_proj.{kind}"]] = chunk.clone()
        elif official_name.endswith("codebook_used") or ".attn_pool." in official_name:
            continue  # the conversion drops these
        elif official_name == "vision_model.vision_tower.pos_embed":
            state[hf_names[official_name]] = tensor[0].clone()
        else:
            state[hf_names[official_name]] = tensor.clone()
    assert set(state) == set(hf.state_dict())
    hf.load_state_dict(state, strict=True)
    hf_folder = tmp_path / "hf"
    hf.save_pretrained(hf_folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json"):
        shutil.copy(tiny_checkpoint / name, hf_folder / name)
    converted = januspro.load(hf_folder, device="cpu")
    assert converted.report.layout == "transformers"
    options = januspro.ChatOptions(max_new_tokens=8)
    assert converted.chat("Describe the image.", options=options).tokens == official.chat("Describe the image.", options=options).tokens
    a = converted.generate_image_codes("a red circle", januspro.ImageOptions(n=2, seed=4))[0]
    b = official.generate_image_codes("a red circle", januspro.ImageOptions(n=2, seed=4))[0]
    assert torch.equal(a, b)

    # pytorch_model.bin (weights_only) of the official layout loads too.
    bin_folder = tmp_path / "bin"
    shutil.copytree(tiny_checkpoint, bin_folder)
    (bin_folder / "model.safetensors").unlink()
    torch.save(ours, bin_folder / "pytorch_model.bin")
    assert januspro.load(bin_folder, device="cpu").chat("Describe the image.", options=options).tokens == \
        official.chat("Describe the image.", options=options).tokens


def _copy(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    return folder


def test_unknown_model_path_and_hub_id_offline(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        januspro.load(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        januspro.load("nobody-here/no-such-model")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        januspro.load(tmp_path / "file.txt")


def test_truncated_and_corrupt_safetensors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_checkpoint, tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        januspro.load(folder, device="cpu")
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        januspro.load(folder, device="cpu")
    weights.unlink()
    with pytest.raises(CheckpointError, match="no weights found"):
        januspro.load(folder, device="cpu")


def test_missing_unexpected_and_misshapen_tensors_are_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    folder = _copy(tiny_checkpoint, tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    broken = dict(state)
    del broken["gen_head.vision_head.bias"]
    broken["extra.weight"] = torch.zeros(2)
    broken["aligner.layers.0.weight"] = torch.zeros(3, 3)
    save_file(broken, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError) as info:
        januspro.load(folder, device="cpu")
    message = str(info.value)
    assert "missing tensors: gen_head.vision_head.bias" in message
    assert "unexpected tensors: extra.weight" in message
    assert "aligner.layers.0.weight (checkpoint (3, 3)" in message


def test_bad_config_and_tokenizer(tiny_checkpoint: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_checkpoint, tmp_path)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        januspro.load(folder, device="cpu")
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match="neither an official Janus config"):
        januspro.load(folder, device="cpu")
    shutil.copy(tiny_checkpoint / "config.json", folder / "config.json")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer.json is missing"):
        januspro.load(folder, device="cpu")


def test_saved_checkpoint_round_trips(tiny_janus, tmp_path: Path) -> None:
    folder = tiny_janus.save(tmp_path / "copy", max_shard_bytes=1_000_000)
    assert (folder / "model.safetensors.index.json").exists()
    again = januspro.load(folder, device="cpu")
    for name, tensor in tiny_janus.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], tensor), name


def test_loading_leaves_the_global_rng_alone(tiny_checkpoint: Path) -> None:
    """`load` draws nothing from the global torch RNG (a user's seeded run, or a resumed build, goes on as if
    nothing was loaded), the CPU layout's probe of packed weights included."""
    torch.manual_seed(3)
    before = torch.get_rng_state()
    januspro.load(tiny_checkpoint, device="cpu", dtype=torch.float32)
    januspro.load(None, device="cpu")
    assert torch.equal(torch.get_rng_state(), before)


def test_a_checkpoint_names_its_caption_grammar(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """`caption_grammar` in processor_config.json (absent: none) survives save and load; an unknown one is a
    clear CheckpointError at load and an InputError when a processor is built with it."""
    from januspro.processing.processor import JanusProcessor

    folder = _copy(tiny_checkpoint, tmp_path)
    janus = januspro.load(folder, device="cpu")
    assert janus.processor.caption_grammar is None
    assert "caption_grammar" not in json.loads((janus.save(tmp_path / "plain") / "processor_config.json").read_text())
    janus.processor.caption_grammar = "shapes-world"
    saved = janus.save(tmp_path / "saved")
    config = json.loads((saved / "processor_config.json").read_text())
    assert config["caption_grammar"] == "shapes-world"
    assert januspro.load(saved, device="cpu").processor.caption_grammar == "shapes-world"
    (saved / "processor_config.json").write_text(json.dumps({**config, "caption_grammar": "klingon"}))
    with pytest.raises(CheckpointError, match="unknown caption_grammar 'klingon'"):
        januspro.load(saved, device="cpu")
    p = janus.processor
    with pytest.raises(InputError, match="unknown caption_grammar"):
        JanusProcessor(p.tokenizer, p.image_processor, p.chat_format, p.num_image_tokens, p.max_length,
                       caption_grammar="klingon")


def test_a_checkpoint_names_its_default_candidates(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """`candidates` in processor_config.json (absent: 1, as for the official checkpoints) is how many samples a
    call that gives none draws per image; it survives save and load, and a bad value is a clear error."""
    from januspro.processing.processor import JanusProcessor

    folder = _copy(tiny_checkpoint, tmp_path)
    janus = januspro.load(folder, device="cpu")
    assert janus.processor.candidates == 1 and janus.candidates(januspro.ImageOptions(n=2)) == 1
    janus.processor.candidates = 6
    saved = janus.save(tmp_path / "saved")
    config = json.loads((saved / "processor_config.json").read_text())
    assert config["candidates"] == 6
    again = januspro.load(saved, device="cpu")
    assert again.candidates(januspro.ImageOptions(n=2)) == 6
    assert again.candidates(januspro.ImageOptions(n=2, candidates=1)) == 1  # a call's own choice wins
    assert again.candidates(januspro.ImageOptions(n=100, max_images=256)) == 2  # lowered to fit max_images
    for bad in (0, "8", True, 2.5):
        (saved / "processor_config.json").write_text(json.dumps({**config, "candidates": bad}))
        with pytest.raises(CheckpointError, match="candidates must be an integer >= 1"):
            januspro.load(saved, device="cpu")
    p = janus.processor
    with pytest.raises(InputError, match="candidates must be an integer >= 1"):
        JanusProcessor(p.tokenizer, p.image_processor, p.chat_format, p.num_image_tokens, p.max_length, candidates=0)


def test_a_checkpoint_names_its_ranking_shift(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """`ranking_shift` in processor_config.json (absent: 0, one read per ranked sample) survives save and load,
    and a bad value is a clear error, of the checkpoint or of the constructor."""
    from januspro.processing.processor import JanusProcessor

    folder = _copy(tiny_checkpoint, tmp_path)
    janus = januspro.load(folder, device="cpu")
    assert janus.processor.ranking_shift == 0
    assert "ranking_shift" not in json.loads((janus.save(tmp_path / "plain") / "processor_config.json").read_text())
    janus.processor.ranking_shift = 4
    saved = janus.save(tmp_path / "saved")
    config = json.loads((saved / "processor_config.json").read_text())
    assert config["ranking_shift"] == 4 and januspro.load(saved, device="cpu").processor.ranking_shift == 4
    for bad in (-1, "4", True, 2.5):
        (saved / "processor_config.json").write_text(json.dumps({**config, "ranking_shift": bad}))
        with pytest.raises(CheckpointError, match="ranking_shift must be an integer >= 0"):
            januspro.load(saved, device="cpu")
    p = janus.processor
    with pytest.raises(InputError, match="ranking_shift must be an integer >= 0"):
        JanusProcessor(p.tokenizer, p.image_processor, p.chat_format, p.num_image_tokens, p.max_length, ranking_shift=-2)


def test_a_checkpoint_names_its_default_guidance(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """`cfg_weight` in processor_config.json is the guidance of calls that give none (5 when absent, as for the
    official checkpoints); it survives save and load, and a bad value is a clear CheckpointError."""
    folder = _copy(tiny_checkpoint, tmp_path)
    janus = januspro.load(folder, device="cpu")
    assert janus.processor.cfg_weight == 5.0
    default = janus.generate_image_codes("a red circle", januspro.ImageOptions(n=2, seed=1))[0]
    assert torch.equal(default, janus.generate_image_codes("a red circle", januspro.ImageOptions(n=2, seed=1, cfg_weight=5.0))[0])
    janus.processor.cfg_weight = 1.5
    saved = janus.save(tmp_path / "saved")
    assert json.loads((saved / "processor_config.json").read_text())["cfg_weight"] == 1.5
    again = januspro.load(saved, device="cpu")
    assert again.processor.cfg_weight == 1.5
    codes = again.generate_image_codes("a red circle", januspro.ImageOptions(n=2, seed=1))[0]
    assert torch.equal(codes, again.generate_image_codes("a red circle", januspro.ImageOptions(n=2, seed=1, cfg_weight=1.5))[0])
    assert not torch.equal(codes, default)
    config = json.loads((saved / "processor_config.json").read_text())
    for bad in ("high", -1, True):
        (saved / "processor_config.json").write_text(json.dumps({**config, "cfg_weight": bad}))
        with pytest.raises(CheckpointError, match="cfg_weight must be a number >= 0"):
            januspro.load(saved, device="cpu")


def test_a_checkpoint_names_its_default_image_temperature(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """`image_temperature` in processor_config.json is the image-code sampling temperature of calls that give
    none (1 when absent, as for the official checkpoints); an explicit temperature still wins; it survives save
    and load, and a bad value is a clear CheckpointError."""
    folder = _copy(tiny_checkpoint, tmp_path)
    janus = januspro.load(folder, device="cpu")
    assert janus.processor.image_temperature == 1.0
    options = januspro.ImageOptions(n=2, seed=1, top_k=20)
    default = janus.generate_image_codes("a red circle", options)[0]
    assert torch.equal(default, janus.generate_image_codes("a red circle", replace(options, temperature=1.0))[0])
    janus.processor.image_temperature = 0.3
    saved = janus.save(tmp_path / "saved")
    assert json.loads((saved / "processor_config.json").read_text())["image_temperature"] == 0.3
    again = januspro.load(saved, device="cpu")
    assert again.processor.image_temperature == 0.3 and again.image_temperature(None) == 0.3
    cooler = again.generate_image_codes("a red circle", options)[0]
    assert torch.equal(cooler, again.generate_image_codes("a red circle", replace(options, temperature=0.3))[0])
    assert not torch.equal(cooler, default)
    assert torch.equal(default, again.generate_image_codes("a red circle", replace(options, temperature=1.0))[0])
    config = json.loads((saved / "processor_config.json").read_text())
    for bad in ("warm", -0.5, False, None):
        (saved / "processor_config.json").write_text(json.dumps({**config, "image_temperature": bad}))
        with pytest.raises(CheckpointError, match="image_temperature must be a number >= 0"):
            januspro.load(saved, device="cpu")
