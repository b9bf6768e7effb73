#!/usr/bin/env bash
# Run a command with edgernn's code compiled for an AVX2-only x86-64 CPU (AMD Zen 3:
# AVX2 + FMA, no AVX-512, no VNNI), on any x86-64 machine that has those instructions.
#
#   bash bench/as_avx2.sh taskset -c 1 .venv/bin/python bench/step_latency.py --out DIR
#
# Numba (and so edgernn's kernels, vector width and int8 path) see the CPU named
# here instead of the host: the code is the code an AMD EPYC/Ryzen would run, timed
# on this machine's cores. It is an emulation of the code, not of the CPU: figures
# are labelled as such (bench/timing.cpu_meta records the override), and peers
# (LiteRT, ONNX Runtime) still choose their own kernels for the real host.
set -euo pipefail
export NUMBA_CPU_NAME=znver3
# Zen 3's features that change code generation (AMD-only ones such as sse4a, clzero
# and mwaitx are left out: the host may not have them, and compilers do not emit them)
export NUMBA_CPU_FEATURES="+64bit,+adx,+aes,+avx,+avx2,+bmi,+bmi2,+clflushopt,+clwb,+cx16,+cx8,+f16c,+fma,+fsgsbase,+fxsr,+lzcnt,+mmx,+movbe,+pclmul,+popcnt,+prfchw,+rdpid,+rdrnd,+rdseed,+sahf,+sha,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+vaes,+vpclmulqdq,+xsave,+xsavec,+xsaveopt,+xsaves"
# a cache of its own: code compiled for another CPU never mixes with the host's
export EDGERNN_CACHE_DIR="${EDGERNN_CACHE_DIR:-${TMPDIR:-/tmp}/edgernn-cache-avx2}"
exec "$@"
