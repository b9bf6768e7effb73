#!/usr/bin/env bash
# edgernn on aarch64 under QEMU user-mode emulation, on an x86-64 Debian machine.
#
#   bash bench/aarch64_check.sh [CPU ...]        # default: cortex-a72 max
#
# For each emulated CPU (cortex-a72: a Raspberry Pi 4, no dot product -> the
# neon int8 path, smull/sadalp; max: every ARMv8/9 feature, with Numba told it is a
# Cortex-A76 with dotprod, as a Raspberry Pi 5 -> the sdot int8 path):
#   1. runs tests/test_parity.py tests/test_quant_engine.py tests/test_graph.py
#      tests/test_tile_i8.py
#      with an arm64 Python 3.11 (fresh EDGERNN_CACHE_DIR, so the engine compiles
#      for aarch64 there);
#   2. writes the outputs of S, M, L in float and int8 (bench/arch_outputs.py) and
#      compares them with this machine's x86-64 outputs (bit-identical or not,
#      max |diff|; exit 1 past the tolerances);
#   3. times a cold start (import + load + first step of M, empty cache) -- under
#      emulation, so only a rough indicator, never a Pi figure.
# AARCH64_TESTS=0 skips step 1. The working tree's tracked files are copied to
# $AARCH64_DIR/src first, so editing the checkout during the (long) run is safe.
# Everything goes to $AARCH64_DIR (default /tmp/edgernn-aarch64), reused between
# runs: an arm64 Debian tree with python3.11 (mmdebstrap --variant=extract, which
# runs nothing inside the tree, so no binfmt_misc is needed), aarch64 wheels of
# numpy/numba/llvmlite/pytest/hypothesis at the versions of .venv (installed by
# .venv's pip with --platform), and torch 2.5.1 -- the last CPU-only aarch64 torch
# on PyPI (2.13.0's aarch64 wheel is the CUDA build), used only as test_parity's
# oracle. Needs root for apt-get (qemu-user-static, mmdebstrap) the first time.
# A summary goes to $AARCH64_DIR/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
W=${AARCH64_DIR:-/tmp/edgernn-aarch64}
CPUS=("$@")
[ ${#CPUS[@]} -gt 0 ] || CPUS=(cortex-a72 max)
HOSTPY=$REPO/.venv/bin/python
mkdir -p "$W/bin"
SUMMARY=$W/summary.txt
: > "$SUMMARY"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }
T0=$(date +%s)

[ -x "$HOSTPY" ] || make venv
if ! command -v qemu-aarch64-static >/dev/null || ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static mmdebstrap
fi

if [ ! -x "$W/rootfs/usr/bin/python3.11" ]; then
  log "arm64 Debian tree with python3.11 -> $W/rootfs (mirror: this machine's apt sources)"
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  mmdebstrap --arch=arm64 --variant=extract --include=python3.11,libpython3.11-stdlib,python3.11-minimal,libstdc++6,libgcc-s1,zlib1g,libgomp1 \
    "$codename" "$W/rootfs" > "$W/mmdebstrap.log" 2>&1
fi

PIPT=("$HOSTPY" -m pip install -q --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
      --platform manylinux_2_17_aarch64 --python-version 3.11 --implementation cp --only-binary=:all:)
if [ ! -d "$W/site/numba" ]; then
  vers=$("$HOSTPY" -c "import numpy, numba, llvmlite, pytest, hypothesis as h; print(f'numpy=={numpy.__version__} numba=={numba.__version__} llvmlite=={llvmlite.__version__} pytest=={pytest.__version__} hypothesis=={h.__version__}')")
  log "aarch64 wheels: $vers"
  # shellcheck disable=SC2086
  "${PIPT[@]}" --target "$W/site" $vers filelock typing-extensions sympy networkx jinja2 fsspec 2>&1 | grep -v "^WARNING: Location" || true
fi
if [ ! -d "$W/site-torch/torch" ]; then
  log "aarch64 torch 2.5.1 (CPU-only wheel, test_parity's oracle)"
  "${PIPT[@]}" --no-deps --target "$W/site-torch" torch==2.5.1 2>&1 | grep -v "^WARNING: Location" || true
fi

rm -rf "$W/src" "$W/M.ernn"
mkdir -p "$W/src"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$W/src"
log "source: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' + uncommitted changes') copied to $W/src"
cd "$W/src"
log "x86-64 reference outputs"
"$HOSTPY" bench/arch_outputs.py "$W/out-x86_64.npz" --save-model "$W/M.ernn" | tee -a "$SUMMARY"

rc=0
for cpu in "${CPUS[@]}"; do
  py=$W/bin/python-$cpu
  # a host script, so that a test's subprocess.run([sys.executable, ...]) is emulated too
  printf '#!/bin/sh\nexec qemu-aarch64-static -cpu %s -L %s -0 "$0" %s/usr/bin/python3.11 "$@"\n' \
    "$cpu" "$W/rootfs" "$W/rootfs" > "$py"
  chmod +x "$py"
  # the emulated commands' environment only (the host's python must not see it)
  EMU=(env PYTHONPATH="$W/site-torch:$W/site:$W/src" PYTHONNOUSERSITE=1
       EDGERNN_CACHE_DIR="$W/cache-$cpu" NUMBA_CPU_NAME="$cpu")
  if [ "$cpu" = max ]; then   # LLVM cannot read an emulated CPU's features: say them
    EMU+=(NUMBA_CPU_NAME=cortex-a76
          NUMBA_CPU_FEATURES=+neon,+fp-armv8,+crc,+lse,+rdm,+rcpc,+dotprod,+fullfp16)
  fi
  rm -rf "$W/cache-$cpu"
  log "[$cpu] $("${EMU[@]}" "$py" -c 'import platform, numba; from edgernn.kernels import tile_i8; print(platform.machine(), "numba", numba.__version__, "cpu", numba.config.CPU_NAME, "int8 path", tile_i8.path())')"
  t=$(date +%s)
  if [ "${AARCH64_TESTS:-1}" != 0 ]; then
    if "${EMU[@]}" "$py" -m pytest -q -p no:cacheprovider tests/test_parity.py tests/test_quant_engine.py \
        tests/test_graph.py tests/test_tile_i8.py tests/test_tile.py tests/test_minmax.py \
        > "$W/pytest-$cpu.log" 2>&1; then st=passed; else st=FAILED; rc=1; fi
    log "[$cpu] tests $st in $(( $(date +%s) - t )) s: $(tail -1 "$W/pytest-$cpu.log")"
  fi
  t=$(date +%s)
  "${EMU[@]}" "$py" bench/arch_outputs.py "$W/out-$cpu.npz" | tee -a "$SUMMARY"
  log "[$cpu] outputs in $(( $(date +%s) - t )) s"
  if ! "$HOSTPY" bench/arch_outputs.py --compare "$W/out-x86_64.npz" "$W/out-$cpu.npz" \
      | tee -a "$SUMMARY"; then rc=1; fi
  rm -rf "$W/cold-$cpu"
  log "[$cpu] emulated cold start of M (empty cache; QEMU, not a Pi): $("${EMU[@]}" EDGERNN_CACHE_DIR="$W/cold-$cpu" "$py" bench/startup.py "$W/M.ernn")"
  log "[$cpu] emulated warm start of M: $("${EMU[@]}" EDGERNN_CACHE_DIR="$W/cold-$cpu" "$py" bench/startup.py "$W/M.ernn")"
done
log "done in $(( $(date +%s) - T0 )) s, exit $rc (summary: $SUMMARY)"
exit $rc
