#!/usr/bin/env bash
# The GPU checks of this project in one job: the generation benchmark on the full Janus-Pro-1B
# and -7B configs (7B with the 22 GB memory budget) and the GPU-marked tests.
#
#   benchmarks/gpu_checks.sh OUT_DIR [SECONDS_1B SECONDS_7B SECONDS_TESTS]
#
# Runs from the repository root with the `python3` on PATH, from the source tree (no install).
# Where a folder .whl/ holds wheels (e.g. a transformers release whose Janus image generation
# works, for a machine without network), they are installed into a private folder first.
# Each step has its own time limit, so that a slow or hanging step still leaves the others'
# results; everything is written to OUT_DIR (logs, the benchmark JSON files).
set -u
out=${1:?usage: benchmarks/gpu_checks.sh OUT_DIR [SECONDS_1B SECONDS_7B SECONDS_TESTS]}
limit_1b=${2:-170}
limit_7b=${3:-170}
limit_tests=${4:-100}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    if compgen -G ".whl/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/januspro-site .whl/*.whl \
            && export PYTHONPATH="/tmp/januspro-site:$PYTHONPATH"
        python3 -c "import transformers" || { echo "carried wheels unusable: using the machine's own packages";
                                              export PYTHONPATH="$PWD/src"; }
    fi
    python3 -c "import torch, transformers, januspro; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} >"$out/env.txt" 2>&1

bench() {  # bench NAME LIMIT ARGS...
    local name=$1 limit=$2
    shift 2
    echo "== $(date -u +%T) bench $name: $*"
    timeout -s INT "$limit" python3 benchmarks/bench_generation.py --save "$out/bench-$name.json" "$@"
    echo "== $(date -u +%T) bench $name exit $?"
}

bench 1b "$limit_1b" --config 1b --baseline-warmup 0 --baseline-repeat 1 >"$out/bench-1b.txt" 2>&1
bench 7b "$limit_7b" --config 7b --n 16 --memory-budget-gb 22 --variants januspro,januspro-budget,januspro-int8,transformers \
    --baseline-warmup 0 --baseline-repeat 1 --tasks image,understand >"$out/bench-7b.txt" 2>&1

{
    echo "== $(date -u +%T) GPU tests"
    timeout -s INT "$limit_tests" python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_engine.py tests/test_gpu.py
    echo "== $(date -u +%T) GPU tests exit $?"
} >"$out/gpu-tests.txt" 2>&1
