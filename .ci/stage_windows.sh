#!/usr/bin/env bash
# CI stage "windows" (issue #22): the engine's C layer for Windows, executed.
# tests/c/test_team.c includes the real headers (src/cymlp/_engine/csrc:
# team.h, resources.h and through them platform.h) and runs the real team,
# busy-machine and thread-probe functions on several threads. It is compiled
# with MinGW-w64 (Debian's gcc-mingw-w64-x86-64, GCC 12, win32 thread model)
# for platform.h's Win32 branch (SRWLOCK, CONDITION_VARIABLE,
# _beginthreadex, QueryPerformanceCounter), three ways:
#   - C11 atomics (as MinGW and clang-cl builds have them),
#   - -DCYMLP_USE_INTERLOCKED=1: the Interlocked intrinsics of MSVC builds,
#   - C11 atomics with an OpenMP region (MinGW's libgomp) driving the team,
# each run as a Windows program under Wine (Debian's wine64); and natively
# for the POSIX branch, so the two branches pass the same checks.
# What is not covered: MSVC itself (cl.exe, its /fp flags, __declspec(thread)
# as MSVC spells thread-local data), which only a Windows machine has.
#
# Measured on 2 shared cores: apt-get install 26 s (first run); each compile
# ~1 s; wineboot of a fresh prefix 6 s; each test under Wine 5-10 s.
#
#   bash .ci/stage_windows.sh          (idempotent)
set -euo pipefail
cd "$(dirname "$0")/.."

MINGW=x86_64-w64-mingw32-gcc
WINE=/usr/lib/wine/wine64   # Debian's wine64 has no /usr/bin/wine (that is the "wine" package)
if ! command -v "${MINGW}" >/dev/null || [[ ! -x "${WINE}" ]] || ! command -v gcc >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        gcc gcc-mingw-w64-x86-64 wine64
fi
"${MINGW}" --version | head -n 1
"${WINE}" --version

out=build/ci-windows
mkdir -p "${out}"
CFLAGS=(-std=c11 -O2 -Wall -Wextra -Werror -Isrc/cymlp/_engine/csrc)
TEST=tests/c/test_team.c

# -static takes libgomp, libwinpthread (libgomp's own threads) and libgcc
# into the .exe, so Wine needs no MinGW DLLs on its path.
"${MINGW}" "${CFLAGS[@]}" -static "${TEST}" -o "${out}/test_team.exe"
"${MINGW}" "${CFLAGS[@]}" -DCYMLP_USE_INTERLOCKED=1 -static "${TEST}" \
    -o "${out}/test_team_interlocked.exe"
"${MINGW}" "${CFLAGS[@]}" -fopenmp -static "${TEST}" -o "${out}/test_team_omp.exe"
# the POSIX branch of the same test, natively
gcc "${CFLAGS[@]}" -fopenmp "${TEST}" -o "${out}/test_team_posix"
"${out}/test_team_posix" | tail -n 1

# A fresh Wine prefix each run (headless: no display, no Mono/Gecko
# installers, no debug channels). Wine returns the program's exit status.
export WINEPREFIX
WINEPREFIX=$(mktemp -d /tmp/cymlp-wine.XXXXXX)
trap '"${WINE%64}server64" -k 2>/dev/null || true; rm -rf "${WINEPREFIX}"' EXIT
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" DISPLAY=
"${WINE}" wineboot --init >/dev/null 2>&1
for exe in test_team test_team_interlocked test_team_omp; do
    echo "== ${exe}.exe under Wine"
    # the whole report on a failure, its first and last lines otherwise
    if ! "${WINE}" "${out}/${exe}.exe" > "${out}/${exe}.log"; then
        cat "${out}/${exe}.log"
        echo "${exe}.exe failed under Wine" >&2
        exit 1
    fi
    head -n 1 "${out}/${exe}.log"
    tail -n 1 "${out}/${exe}.log"
done
