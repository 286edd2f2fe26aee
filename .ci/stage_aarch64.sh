#!/usr/bin/env bash
# CI stage "aarch64" (issue #22): the engine built for aarch64 and its tests
# run there, under user-mode emulation (Debian's qemu-user-static 7.2).
#
# How, and why this way (each measured on 2 shared cores):
# - an arm64 Debian root (debootstrap's first stage from the mirror this
#   machine's apt uses, then its packages unpacked: minbase + python3.11,
#   its headers, libc6-dev, libgomp1): the target's own interpreter, libc
#   and OpenMP runtime. ~80 s, kept in ${CYMLP_ARM64_ROOT} and reused.
# - qemu runs the root's binaries through binfmt_misc (mounted and registered
#   here; the F flag, so no emulator copy inside the root).
# - QEMU_CPU=neoverse-n1: qemu's default CPU ("max") advertises SME, and the
#   scipy-openblas32 wheel's OpenBLAS then picks its armv9sme kernels, whose
#   dgemm/sgemm give wrong products under qemu 7.2 (errors of order 1 for
#   n >= 8; every fit of the engine ended in non-finite weights). A real
#   server core (Neoverse N1: NEON, no SVE/SME) gets the NEON kernels, which
#   are right.
# - Python packages: wheels for manylinux aarch64 / cp311 downloaded and
#   unpacked by the host's pip (--platform ... --target), not by pip under
#   emulation (2.5 min for the same wheels, plus 50 s for a venv with pip).
# - the build: CROSS-compiled on the host by meson-python + meson + Cython
#   (native) and Debian's aarch64-linux-gnu-gcc 12 against the root
#   (--sysroot; a meson cross file; the root's python, under qemu, answers
#   meson's introspection; numpy's and python's flags from the root's
#   pkg-config files): ~75 s. The same pip + meson-python build inside the
#   root, all emulated, spent 5.5 min in Cython and more than 12 min in cc1.
# - the tests run in the root, on the emulated CPU (timings in
#   CYMLP_AARCH64_TESTS's comment below).
#
#   bash .ci/stage_aarch64.sh [pytest arguments]   (idempotent)
#
# Without arguments: the default selection below.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
R=${CYMLP_ARM64_ROOT:-/var/tmp/cymlp-arm64-root}
PY=3.11   # bookworm's python3
SITE=/opt/site   # inside the root: the wheels' packages, on PYTHONPATH
export QEMU_CPU=neoverse-n1

t0=$(date +%s)
lap() { echo "[aarch64] $1: $(( $(date +%s) - t0 )) s since the start"; }

# --- the host: emulator, binfmt_misc, debootstrap, cross compiler ------------
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null \
        || ! command -v update-binfmts >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        qemu-user-static binfmt-support debootstrap gcc-aarch64-linux-gnu pkg-config
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64
fi
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
    { echo "qemu-aarch64 is registered without the F flag" >&2; exit 1; }

# --- the arm64 root -----------------------------------------------------------
codename=$(. /etc/os-release && echo "${VERSION_CODENAME}")
# The mirror: the first one apt's sources give for this release (not its
# security suite): deb822 .sources stanzas, then one-line sources.
mirror() {
    {
        awk -v c="${codename}" '
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c) print uri }
            /^$/ { uri = "" }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
        awk -v c="${codename}" '$1 == "deb" && $3 == c { print $2 }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
    } | head -n 1
}
# debootstrap's first stage only (--foreign: download and unpack the
# required packages, natively), then the packages it fetched for --include
# unpacked with dpkg-deb: no maintainer script runs, so nothing is emulated.
# The tests need no configured system, only the files: 80 s here, where the
# full debootstrap (its second stage under qemu) took 5.5 min on a quiet
# machine and more than 20 min on a busy one.
if [[ ! -e "${R}/.cymlp-root-complete" ]]; then
    rm -rf "${R}"
    url=$(mirror)
    [[ -n "${url}" ]] || { echo "no Debian mirror in apt's sources" >&2; exit 1; }
    debootstrap --foreign --arch=arm64 --variant=minbase \
        --include=python3,python3-dev,libc6-dev,libgomp1 \
        "${codename}" "${R}" "${url}"
    for deb in "${R}"/var/cache/apt/archives/*.deb; do
        dpkg-deb -x "${deb}" "${R}"
    done
    rm -f "${R}"/var/cache/apt/archives/*.deb
    touch "${R}/.cymlp-root-complete"
fi
lap "root ready"

cleanup() { umount "${R}/proc" 2>/dev/null || true; }
trap cleanup EXIT
mountpoint -q "${R}/proc" || mount -t proc proc "${R}/proc"
# a command in the root, with a clean environment (no host pip settings)
in_root() {
    chroot "${R}" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
        QEMU_CPU="${QEMU_CPU}" PYTHONPATH="${SITE}" PYTHONDONTWRITEBYTECODE=1 "$@"
}
in_root python3 -c 'import platform, sys; print("root:", sys.version.split()[0], platform.machine())'

# --- Python packages for the root: downloaded and unpacked by the host's pip --
# (pip's --platform options only go with --target)
mkdir -p "${R}${SITE}"
python3 -m pip install -q --upgrade --no-compile --only-binary=:all: \
    --platform manylinux2014_aarch64 --platform "manylinux_2_28_aarch64" \
    --python-version "${PY}" --implementation cp --abi "cp${PY/./}" --abi abi3 --abi none \
    --target "${R}${SITE}" \
    numpy scipy scikit-learn "scipy-openblas32>=0.3.29" pytest threadpoolctl hypothesis
in_root python3 -c 'import numpy, scipy, sklearn; print("numpy", numpy.__version__, "scipy", scipy.__version__, "scikit-learn", sklearn.__version__)'
lap "packages ready"

# --- the cross build ----------------------------------------------------------
out="${SRC}/build/ci-aarch64"
rm -rf "${out}"
mkdir -p "${out}/dist"
cat > "${out}/python" <<EOF
#!/bin/sh
exec qemu-aarch64-static -L "${R}" "${R}/usr/bin/python${PY}" "\$@"
EOF
chmod +x "${out}/python"
cat > "${out}/cross.ini" <<EOF
[binaries]
c = ['aarch64-linux-gnu-gcc', '--sysroot=${R}']
ar = 'aarch64-linux-gnu-ar'
strip = 'aarch64-linux-gnu-strip'
pkg-config = 'pkg-config'
python = '${out}/python'
exe_wrapper = ['qemu-aarch64-static', '-L', '${R}']

[properties]
sys_root = '${R}'
pkg_config_libdir = ['${R}/usr/lib/aarch64-linux-gnu/pkgconfig', '${R}/usr/share/pkgconfig', '${R}${SITE}/numpy/_core/lib/pkgconfig']

[host_machine]
system = 'linux'
cpu_family = 'aarch64'
cpu = 'aarch64'
endian = 'little'
EOF
# (an environment activated by the caller is not this shell's to leave)
if declare -F deactivate >/dev/null; then deactivate; fi
python3 -m venv .venv-aarch64-build
# shellcheck disable=SC1091
. .venv-aarch64-build/bin/activate
# numpy: its .pxd files, which Cython reads on the host (the C flags come
# from the root's numpy, through pkg-config)
python -m pip install -q "meson-python>=0.18" "meson>=1.4" "Cython>=3.0.10" ninja numpy
# meson-python tags the wheel from the running interpreter (cp311 here too)
# and from _PYTHON_HOST_PLATFORM; Cython runs natively (its C is the same
# for every target). -Dwerror=true as in the packaging stage: the x86-only
# paths' fallbacks compile without a warning on aarch64 too
# (CYMLP_AARCH64_WERROR=false turns it off, to see past a new one).
_PYTHON_HOST_PLATFORM=linux-aarch64 python -m pip wheel --no-build-isolation --no-deps \
    -Csetup-args="--cross-file=${out}/cross.ini" \
    -Csetup-args=-Dopenmp=enabled \
    -Csetup-args=-Dwerror="${CYMLP_AARCH64_WERROR:-true}" \
    -w "${out}/dist" .
deactivate
wheel=$(ls "${out}"/dist/cymlp-*-linux_aarch64.whl)
python3 -m pip install -q --upgrade --no-deps --no-compile --only-binary=:all: \
    --platform linux_aarch64 --python-version "${PY}" --implementation cp \
    --abi "cp${PY/./}" --target "${R}${SITE}" "${wheel}"
in_root python3 -c 'import platform; from cymlp import _engine; assert _engine.OPENMP, "no OpenMP"; print("cymlp engine:", platform.machine(), "OpenMP on")'
lap "built and installed"

# --- the tests, in the root -----------------------------------------------------
rm -rf "${R}/src"
mkdir -p "${R}/src"
git ls-files -z tests pyproject.toml | tar --null -T - -cf - | tar -xf - -C "${R}/src"
# Default selection: the kernels, the parity tests and the thread tests (the
# same bits on 1-8 threads, on aarch64 itself). Measured under qemu with the
# machine busy with other jobs: test_kernels 3.1 min (215 tests),
# test_parity 1.4 min (135), test_threads 13 min (39; 2 min of it the
# environment-settings test's interpreters, 1.9 min the preemption test).
# Left out, to keep .ci/run within its time limit and because they are about
# the OS, not the CPU (both run in the native stages):
# - the preemption test: it needs a competing process to be seen preempting
#   the team's threads at a rate (one preemption per 2 ms of a call), which
#   the emulated calls, many times slower, do not reach (found 0 of 42
#   calls); the signal itself is counted under qemu as natively, and
#   test_preemption_count_sees_a_competitor_on_the_same_cpu (selected) checks it;
# - the environment-settings test: 2 minutes of interpreters starting under
#   qemu to read OMP_NUM_THREADS and friends, which no CPU changes.
CYMLP_AARCH64_TESTS=(tests/test_kernels.py tests/test_parity.py tests/test_threads.py
    --deselect tests/test_threads.py::test_preempted_teams_send_calls_to_one_thread
    --deselect tests/test_threads.py::test_same_bits_under_environment_thread_settings)
if [[ $# -eq 0 ]]; then
    set -- "${CYMLP_AARCH64_TESTS[@]}"
fi
in_root sh -c 'cd /src && exec python3 -m pytest -p no:cacheprovider "$@"' sh "$@"
lap "tests done"
