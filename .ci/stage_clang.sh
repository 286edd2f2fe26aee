#!/usr/bin/env bash
# CI stage "clang" (issue #22): the package built with Debian's clang and
# LLVM's OpenMP runtime (libomp), with warnings as errors, and the parity,
# kernel, thread and bitwise-fixture tests run on it.
#
# What this checks beyond the GCC stages:
# - the fallbacks clang takes: vector_loops.h's target_clones is GCC-only,
#   so clang builds the plain loops; exact_quotient.h's AVX2/AVX-512 paths
#   are compiled (clang defines __GNUC__) with clang's intrinsics;
# - -ffp-contract=off is needed and honoured: clang's default for C is
#   -ffp-contract=on (it fuses a*b+c within one expression into an FMA
#   wherever the target has FMA; checked with clang 14 -march=haswell);
# - LLVM's libomp instead of libgomp (fork handler, thread reuse, the
#   team's barrier under another runtime);
# - the same bits as the GCC build (tests/test_bitwise_fixture.py).
#
# Measured on 2 shared cores: apt-get install 8 s (clang-14, libomp-14),
# pip install of the package and its test dependencies 66 s, the test
# files 50 s on a quiet machine, 3 min on a busy one.
# Seen: clang 14's build passes -Dwerror=true (no warning), OpenMP 5.0 found.
#
#   bash .ci/stage_clang.sh          (idempotent; reuses .venv-clang)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang >/dev/null || ! dpkg -s libomp-dev >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        clang libomp-dev
fi
clang --version | head -n 1

# (an environment activated by the caller is not this shell's to leave)
if declare -F deactivate >/dev/null; then deactivate; fi
python3 -m venv .venv-clang
# shellcheck disable=SC1091
. .venv-clang/bin/activate
# -Dwerror=true: the C and Cython warnings are errors, as in the packaging
# stage; -Dopenmp=enabled: a clang that cannot find libomp fails here instead
# of quietly building the serial fallback.
CC=clang CXX=clang++ python -m pip install ".[test]" \
    -Csetup-args=-Dwerror=true -Csetup-args=-Dopenmp=enabled
python - <<'PY'
import glob
import os
import subprocess

import cymlp
from cymlp import _engine

assert _engine.OPENMP, "built without OpenMP"
# the compiler that built each extension of the engine's package: their
# .comment sections
root = os.path.dirname(cymlp.__file__)
modules = glob.glob(os.path.join(root, "**", "*.so"), recursive=True)
assert modules, root
for path in modules:
    comment = subprocess.run(["readelf", "-p", ".comment", path],
                             capture_output=True, text=True, check=True).stdout
    assert "clang version" in comment, (path, comment)
print("built by clang, OpenMP on:", *modules)
PY
# The bitwise fixture (the same bits as GCC's build), the parity, kernel and
# thread tests, and the headers compiled alone by clang as the build does
# (tests/test_headers.py; with clang installed it adds clang's run).
python -m pytest tests/test_bitwise_fixture.py tests/test_parity.py tests/test_kernels.py \
    tests/test_threads.py tests/test_headers.py
