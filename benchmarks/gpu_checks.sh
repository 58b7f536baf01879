#!/usr/bin/env bash
# The GPU checks of this project: the generation benchmark on the full Janus-Pro-1B and -7B
# configs (7B with the 22 GB memory budget), the compiled and int8 variants, the GPU-marked tests.
#
#   benchmarks/gpu_checks.sh OUT_DIR [STEP[=SECONDS] ...]
#
# Steps (default: 1b 7b tests, about 6 minutes on an H200): 1b, 1b-compiled, 7b, 7b-compiled,
# 7b-int8, tests; each runs under its own time limit (its default, or =SECONDS), so that a slow
# or hanging step still leaves the others' results. The compiled variants compile their decode
# steps on their warm-up calls (a minute or more per shape), hence their own steps.
# Runs from the repository root with the `python3` on PATH, from the source tree (no install).
# Where a folder .whl/ holds wheels (e.g. a transformers release whose Janus image generation
# works, for a machine without network), they are installed into a private folder first.
# Everything is written to OUT_DIR: env.txt, one log and one JSON file per benchmark step.
set -u
out=${1:?usage: benchmarks/gpu_checks.sh OUT_DIR [STEP[=SECONDS] ...]}
shift
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(1b 7b tests)
for item in "${steps[@]}"; do
    case ${item%%=*} in
        1b | 1b-compiled | 7b | 7b-compiled | 7b-int8 | tests) ;;
        *) echo "unknown step ${item%%=*} (1b, 1b-compiled, 7b, 7b-compiled, 7b-int8, tests)" >&2; exit 2 ;;
    esac
done
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

run_step() {  # run_step NAME LIMIT COMMAND...
    local name=$1 limit=$2
    shift 2
    {
        echo "== $(date -u +%T) $name: $*"
        timeout -s INT "$limit" "$@"
        echo "== $(date -u +%T) $name exit $?"
    } >"$out/$name.txt" 2>&1
}

bench=(python3 benchmarks/bench_generation.py)
for item in "${steps[@]}"; do
    name=${item%%=*}
    limit=${item#*=}
    [ "$limit" = "$item" ] && limit=""
    case $name in
        1b) run_step "$name" "${limit:-150}" "${bench[@]}" --config 1b --variants januspro,transformers \
                --baseline-warmup 0 --baseline-repeat 1 --save "$out/$name.json" ;;
        1b-compiled) run_step "$name" "${limit:-240}" "${bench[@]}" --config 1b --n 16 --text-batch 1 \
                --variants januspro-compiled --tasks image,understand --save "$out/$name.json" ;;
        7b) run_step "$name" "${limit:-150}" "${bench[@]}" --config 7b --n 16 --memory-budget-gb 22 \
                --variants januspro,januspro-budget,transformers --tasks image,understand \
                --baseline-warmup 0 --baseline-repeat 1 --save "$out/$name.json" ;;
        7b-compiled) run_step "$name" "${limit:-240}" "${bench[@]}" --config 7b --n 16 --text-batch 1 \
                --variants januspro-compiled --tasks image,understand --save "$out/$name.json" ;;
        # int8 on its own: its copy of the model would count in the other engines' peak memory
        7b-int8) run_step "$name" "${limit:-90}" "${bench[@]}" --config 7b --n 16 --variants januspro-int8 \
                --tasks image,understand --repeat 2 --save "$out/$name.json" ;;
        tests) run_step "$name" "${limit:-80}" python3 -m pytest -q -m gpu -p no:cacheprovider \
                tests/test_engine.py tests/test_gpu.py ;;
    esac
done
