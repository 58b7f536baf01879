"""The generation benchmark script runs end to end on a tiny config and reports well-formed
results, so that it cannot silently rot. (Speed targets are the script's business, not this
test's: nothing here depends on timings beyond their being measured.)"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_generation.py"


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("bench_generation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_generation"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_tiny_run_reports_every_case(bench, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    threads = torch.get_num_threads()
    try:
        result = bench.main([
            "--config", "tiny", "--device", "cpu", "--n", "1,3", "--tokens", "9", "--text-batch", "1,2",
            "--text-tokens", "3", "--memory-budget-gb", "0.004", "--bundled-model", str(tiny_checkpoint),
            "--threads", "1", "--json", "--quiet",
        ])
    finally:
        torch.set_num_threads(threads)
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result, default=str))

    header = result["header"]
    assert header["config"] == "tiny" and header["device_type"] == "cpu"
    assert header["tokens_per_image"] == 9 < header["tokens_full"]
    assert header["params"] > 0 and header["variants"] == ["januspro", "januspro-budget", "transformers", "original-loop"]

    rows = {(r["task"], r["size"], r["engine"]): r for r in result["rows"]}
    image_engines = ["januspro", "januspro-budget", "transformers", "original-loop"]
    expected = [("image", f"N={n}", e) for n in (1, 3) for e in image_engines]
    expected += [(task, f"B={b}", e) for b in (1, 2) for e in ("januspro", "transformers")
                 for task in ("understand-ttft", "understand-decode")]
    expected += [("bundled", "N=4", "januspro")]
    assert sorted(rows) == sorted(expected)
    for key, row in rows.items():
        assert row["seconds"] is not None and row["seconds"] > 0 and math.isfinite(row["seconds"]), key
        assert "FAILED" not in row["note"], key

    # rates follow from seconds; januspro rows carry speed-ups over both baselines
    assert rows[("image", "N=3", "januspro")]["rate"] == pytest.approx(3 / rows[("image", "N=3", "januspro")]["seconds"])
    speedup = rows[("image", "N=3", "januspro")]["speedup"]
    assert set(speedup) == {"transformers", "original-loop"}
    expected_ratio = rows[("image", "N=3", "transformers")]["seconds"] / rows[("image", "N=3", "januspro")]["seconds"]
    assert speedup["transformers"] == pytest.approx(expected_ratio)
    assert rows[("image", "N=3", "transformers")]["speedup"] == {}
    decode = rows[("understand-decode", "B=2", "januspro")]
    assert decode["rate"] == pytest.approx(2 * 3 / decode["seconds"])
    assert set(decode["speedup"]) == {"transformers"}

    # in float32 both engines decode the same greedy tokens; chunking leaves the codes unchanged
    assert rows[("understand-ttft", "B=2", "januspro")]["note"] == "greedy tokens = transformers"
    assert "codes = unchunked" in rows[("image", "N=3", "januspro-budget")]["note"]
    assert "chunks of" in rows[("image", "N=3", "januspro-budget")]["note"]

    table = bench.format_table(result)
    assert "REDUCED from" in table and "x transformers" in table
    tasks = {"image", "understand-ttft", "understand-decode", "bundled"}
    table_rows = [cells for cells in map(str.split, table.splitlines()) if cells[:1] and cells[0] in tasks
                  and cells[1].startswith(("N=", "B="))]
    assert sorted((cells[0], cells[1], cells[2]) for cells in table_rows) == sorted(rows)


def test_bad_arguments_exit_with_a_message(bench) -> None:
    with pytest.raises(SystemExit, match="unknown variants"):
        bench.main(["--config", "tiny", "--variants", "januspro,nope"])
    with pytest.raises(SystemExit, match="NAME=JSON"):
        bench.main(["--config", "tiny", "--engine-kwargs", "januspro={oops"])


def test_int8_variants_run_on_the_quantized_copy(bench, tiny_checkpoint: Path) -> None:
    threads = torch.get_num_threads()
    try:
        result = bench.main([
            "--config", "tiny", "--device", "cpu", "--n", "1", "--tokens", "5", "--text-batch", "1",
            "--text-tokens", "2", "--tasks", "image,understand", "--variants", "januspro,januspro-int8",
            "--threads", "1", "--quiet",
        ])
    finally:
        torch.set_num_threads(threads)
    rows = {(r["task"], r["engine"]): r for r in result["rows"]}
    assert sorted(rows) == sorted((task, engine) for task in ("image", "understand-ttft", "understand-decode")
                                  for engine in ("januspro", "januspro-int8"))
    for key, row in rows.items():
        assert row["seconds"] is not None and row["seconds"] > 0 and "FAILED" not in row["note"], key


def test_ranked_bundled_rows_follow_the_checkpoints_default(bench, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A checkpoint that names a default of K samples per image gets, besides the plain row, a ranked row for a
    pair prompt, one for a one-object prompt (one text to rank, or the grammar's 18 captions) and one for a count
    (the grammar's split checks either way)."""
    import shutil

    folder = tmp_path / "ranked"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "processor_config.json").read_text())
    (folder / "processor_config.json").write_text(json.dumps(config | {"candidates": 2,
                                                                       "caption_grammar": "shapes-world"}))
    threads = torch.get_num_threads()
    try:
        result = bench.main(["--device", "cpu", "--tasks", "bundled", "--bundled-model", str(folder), "--threads", "1",
                             "--json", "--quiet"])
    finally:
        torch.set_num_threads(threads)
    rows = {r["size"]: r for r in result["rows"] if r["task"] == "bundled"}
    assert sorted(rows) == ["N=4", "N=4, best of 8", "N=4, best of 8, a count", "N=4, best of 8, one object"]
    assert all(r["seconds"] > 0 and "FAILED" not in r["note"] for r in rows.values())
