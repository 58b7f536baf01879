"""The `januspro` command line: outputs on stdout, one-line errors and exit codes."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from januspro.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_chat_prints_only_the_answer(capsys, tiny_checkpoint: Path, tmp_path: Path, rgb_image: Image.Image) -> None:
    path = tmp_path / "scene.png"
    rgb_image.save(path)
    code, out, err = run(capsys, "chat", "--model", str(tiny_checkpoint), "--image", str(path), "--image", str(path),
                         "--max-new-tokens", "8", "Describe the image.")
    assert code == 0
    import januspro

    expected = januspro.load(tiny_checkpoint, device="cpu").chat(
        "Describe the image.", images=[str(path), str(path)], options=januspro.ChatOptions(max_new_tokens=8)).text
    assert out.strip() == expected


def test_interactive_chat_reads_turns_from_stdin(monkeypatch, capsys, tiny_checkpoint: Path, tmp_path: Path, rgb_image) -> None:
    path = tmp_path / "scene.png"
    rgb_image.save(path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"/image {path}\nDescribe the image.\n/image /nope.png\nMore?\n/exit\n"))
    code, out, err = run(capsys, "chat", "--model", str(tiny_checkpoint), "--max-new-tokens", "4")
    assert code == 0
    assert len(out.strip().splitlines()) == 2  # two answers
    assert "januspro: error: image '/nope.png': no such file" in err


def test_generate_writes_numbered_pngs(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "images"
    code, out, err = run(capsys, "generate", "--model", str(tiny_checkpoint), "a red circle", "--n", "3", "--seed", "1",
                         "--cfg", "3", "--out", str(out_dir), "--quiet")
    assert code == 0
    paths = [Path(line) for line in out.split()]
    assert paths == [out_dir / f"{i}.png" for i in range(3)]
    size = Image.open(paths[0]).size
    assert all(Image.open(p).size == size for p in paths)
    code, _, err = run(capsys, "generate", "--model", str(tiny_checkpoint), "a red circle", "--n", "1", "--upscale", "2",
                       "--out", str(tmp_path / "up"), "--quiet")
    assert code == 0 and Image.open(tmp_path / "up" / "0.png").size == (2 * size[0], 2 * size[1])
    assert "Lanczos" in err
    code, out, _ = run(capsys, "generate", "--model", str(tiny_checkpoint), "a red circle", "--n", "2", "--candidates", "3",
                       "--out", str(tmp_path / "ranked"), "--quiet")
    assert code == 0 and len(out.split()) == 2 and sorted(p.name for p in (tmp_path / "ranked").iterdir()) == ["0.png", "1.png"]


def test_compile_flag_reaches_the_engine(monkeypatch, tiny_checkpoint: Path) -> None:
    import argparse

    from januspro.cli_args import add_model_arguments, load_from_args

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert not load_from_args(parser.parse_args(["--model", str(tiny_checkpoint)])).compile
    assert load_from_args(parser.parse_args(["--model", str(tiny_checkpoint), "--compile"])).compile


def test_info_describes_the_model(capsys, tiny_checkpoint: Path) -> None:
    code, out, _ = run(capsys, "info", "--model", str(tiny_checkpoint))
    assert code == 0
    for word in ("parameters", "language model", "SigLIP", "codebook", "official layout", "float32", "cpu",
                 "default cfg 5, temperature 1"):
        assert word in out


@pytest.mark.parametrize("args,message", [
    (["chat", "--model", "/no/such/folder", "hi"], "model folder '/no/such/folder' does not exist"),
    (["chat", "--image", "/no/such.png", "hi"], "image '/no/such.png': no such file"),
    (["generate", "x", "--n", "0"], "argument --n: must be >= 1"),
    (["generate", "x", "--candidates", "0"], "argument --candidates: must be >= 1"),
    (["generate", "x", "--n", "two"], "argument --n: must be a whole number, got 'two'"),
    (["eval", "shapes", "--cfg", "high"], "argument --cfg: must be a number, got 'high'"),
    (["serve", "--port", "70000"], "argument --port: must be a port number (1-65535), got 70000"),
    (["generate", "x", "--top-p", "2"], "argument --top-p: must be in (0, 1]"),
    (["chat", "--temperature", "-1", "hi"], "argument --temperature: must be >= 0"),
    (["generate", "x", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--data", "/tmp", "--out", "/tmp/x", "--ema-decay", "1"], "ema_decay must be in [0, 1)"),
    (["frobnicate"], "invalid choice"),
])
def test_errors_are_one_line_with_a_non_zero_exit(capsys, args: list[str], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("januspro") and message in lines[0], err


def test_bad_model_and_over_long_prompt(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    code, out, err = run(capsys, "chat", "--model", str(bad), "hi")
    assert code == 1 and err.count("\n") == 1 and "config.json" in err
    code, out, err = run(capsys, "chat", "--model", str(tiny_checkpoint), "word " * 3000)
    assert code == 1 and "longer than the model's context" in err and err.count("\n") == 1
    for prompt, message in (("word " * 3000, "longer than the model's context"), ("  ", "the image prompt is empty")):
        code, out, err = run(capsys, "generate", "--model", str(tiny_checkpoint), prompt, "--out", str(tmp_path / "g"))
        # refused before the progress bar opens: the error line is all there is
        lines = err.strip().splitlines()
        assert code == 1 and out == "" and len(lines) == 1 and lines[0].startswith("januspro: error: ") and message in lines[0], err


def test_every_command_has_help() -> None:
    for command in ("chat", "generate", "info", "demo", "serve", "web", "train", "eval"):
        result = subprocess.run([sys.executable, "-m", "januspro.cli", command, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "usage: januspro" in result.stdout, command


@pytest.mark.parametrize("command, needs, flags", [
    ("serve", "uvicorn", ("--host", "--port", "--model", "--max-queue", "--allow-remote-images", "--upscale-weights")),
    ("web", "gradio", ("--host", "--port", "--model", "--share", "--upscale-weights", "--max-images")),
])
def test_server_commands_help_and_port_in_use(command: str, needs: str, flags: tuple[str, ...], tiny_checkpoint: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip(needs)
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in flags:
        assert flag in text
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code = main([command, "--model", str(tiny_checkpoint), "--port", str(busy.getsockname()[1])])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("januspro: error: cannot listen on") and "\n" not in err


def test_train_bundled_resume_without_a_build_is_one_line(capsys, tmp_path: Path) -> None:
    code, out, err = run(capsys, "train", "bundled", "--smoke", "--out", str(tmp_path / "model"),
                         "--workdir", str(tmp_path / "work"), "--resume", "--quiet")
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "nothing to resume" in err and "Traceback" not in err
