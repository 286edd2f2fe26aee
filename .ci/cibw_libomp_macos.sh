#!/usr/bin/env bash
# cibuildwheel's before-all on macOS (pyproject.toml): LLVM's OpenMP runtime
# (libomp) for both wheel architectures, from conda-forge's llvm-openmp, the
# build scikit-learn's macOS wheels take (build_tools/wheels/build_wheels.sh
# there: llvm-openmp 11.1.0, made for macOS 10.9 on x86_64 and 11 on arm64,
# so it runs wherever the wheels' MACOSX_DEPLOYMENT_TARGET does). Homebrew's
# libomp is built for the runner's own macOS, which delocate then refuses
# for an older target.
#
#   bash .ci/cibw_libomp_macos.sh PREFIX   ->  PREFIX/x86_64, PREFIX/arm64
#
# Each holds include/omp.h and lib/libomp.dylib; pyproject.toml's overrides
# point CFLAGS and LDFLAGS at the one of the wheel being built, meson's
# OpenMP dependency then finds it (Apple clang: -Xpreprocessor -fopenmp,
# -lomp), and delocate copies it into the wheel.
#
# Not run by the project's CI (no macOS machine there): configured only.
set -euo pipefail
prefix=${1:?usage: cibw_libomp_macos.sh PREFIX}
LLVM_OPENMP=11.1.0

# micromamba, a single binary, for the runner's own architecture (conda, if
# the runner has one, would do as well; micromamba needs no setup)
case "$(uname -m)" in
    arm64) host=osx-arm64 ;;
    *) host=osx-64 ;;
esac
tools=$(mktemp -d)
curl -fsSL "https://micro.mamba.pm/api/micromamba/${host}/latest" | tar -xj -C "${tools}" bin/micromamba
export MAMBA_ROOT_PREFIX="${tools}/root"
for arch in x86_64 arm64; do
    case "${arch}" in
        arm64) subdir=osx-arm64 ;;
        *) subdir=osx-64 ;;
    esac
    "${tools}/bin/micromamba" create -y -q -p "${prefix}/${arch}" --platform "${subdir}" \
        -c conda-forge "llvm-openmp=${LLVM_OPENMP}"
    test -f "${prefix}/${arch}/include/omp.h"
    test -f "${prefix}/${arch}/lib/libomp.dylib"
done
ls -l "${prefix}"/*/lib/libomp.dylib
