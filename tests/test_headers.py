"""The engine's C headers (src/cymlp/_engine/csrc) are self-contained.

Each header is compiled alone -- ``#include "x.h"`` in an otherwise empty
translation unit, with the C standard and warnings of the build (meson.build:
c_std=c11, warning_level=2, the engine's c_args) and warnings as errors -- so
that a header that uses a name it does not include, or a macro its includer
used to define, fails here rather than in the one order the engine happens to
include them. Then all of them in one unit (the engine's modules include
several together). ``-fsyntax-only``: nothing is linked or run here (the
engine's own tests run the code).

Besides the C compiler Python was built with, each compiler found on this
machine compiles them too, for a branch the native one cannot reach:
clang; MinGW-w64 (the Win32 branch of platform.h, with C11 atomics and with
the Interlocked intrinsics that MSVC builds use); an aarch64 cross compiler
(the fallbacks of the x86-only paths) when its C library headers are
installed. Variants by macro: platform.h's "no preemption count" branch
(macOS and Windows have none).

The headers define static functions that a unit may not call (each engine
module calls some): unused-function and unused-variable warnings are
therefore off here, and only here.
"""

import re
import shlex
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[1] / "src" / "cymlp" / "_engine" / "csrc"
HEADERS = sorted(p.name for p in CSRC.glob("*.h")) if CSRC.is_dir() else []

# The build's C flags (meson.build), then -Werror and the two exceptions above.
FLAGS = [
    "-std=c11", "-Wall", "-Wextra", "-Werror", "-fno-math-errno", "-ffp-contract=off",
    "-Wno-unused-function", "-Wno-unused-variable", "-fsyntax-only",
]

pytestmark = pytest.mark.skipif(
    not HEADERS, reason="the C headers (src/cymlp/_engine/csrc) are not here: "
    "the tests run from an installed copy, not a source checkout")


def _native_cc():
    cc = sysconfig.get_config_var("CC")
    words = shlex.split(cc) if cc else []
    if words and shutil.which(words[0]):
        return words
    return ["cc"] if shutil.which("cc") else None


def _works(cc):
    """Whether cc compiles a unit that includes the C library's headers."""
    try:
        run = subprocess.run(cc + ["-std=c11", "-fsyntax-only", "-x", "c", "-"],
                             input="#include <stdint.h>\n#include <stdlib.h>\n",
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0


def _compilers():
    """(name, command, macro variants) of each usable compiler."""
    found = []
    native = _native_cc()
    if native is not None:
        found.append(("native", native, [[], ["-DCYMLP_FORCE_NO_PREEMPTION_COUNT"]]))
    for name, exe, variants in [
        ("clang", "clang", [[]]),
        ("mingw-w64", "x86_64-w64-mingw32-gcc", [[], ["-DCYMLP_USE_INTERLOCKED=1"]]),
        ("aarch64", "aarch64-linux-gnu-gcc", [[]]),
    ]:
        if shutil.which(exe) and (native is None or exe != native[0]):
            found.append((name, [exe], variants))
    return found


COMPILERS = _compilers()
needs_cc = pytest.mark.skipif(not COMPILERS, reason="no C compiler (sysconfig's CC, cc) here")


def _includes(header, seen=None):
    """The project headers `header` includes, itself too, transitively."""
    seen = set() if seen is None else seen
    if header not in seen:
        seen.add(header)
        text = (CSRC / header).read_text()
        for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
            _includes(name, seen)
    return seen


def _compile(cc, unit, flags):
    run = subprocess.run(cc + FLAGS + flags + ["-I", str(CSRC), "-x", "c", "-"],
                         input=unit, capture_output=True, text=True, timeout=300)
    return run.returncode, run.stdout + run.stderr


@needs_cc
@pytest.mark.parametrize("name, cc, variants", COMPILERS, ids=[c[0] for c in COMPILERS])
def test_each_header_compiles_alone(name, cc, variants):
    if name != "native" and not _works(cc):
        pytest.skip(f"{cc[0]} is here but cannot compile C (no C library headers for it)")
    failures = []
    for header in HEADERS:
        for flags in variants:
            # a macro variant only where the header sees platform.h
            if flags and "platform.h" not in _includes(header):
                continue
            code, out = _compile(cc, f'#include "{header}"\n', flags)
            if code != 0:
                failures.append(f"{header} {' '.join(flags)}:\n{out}")
    assert not failures, f"{name}: not self-contained:\n" + "\n".join(failures)


@needs_cc
@pytest.mark.parametrize("name, cc, variants", COMPILERS, ids=[c[0] for c in COMPILERS])
def test_all_headers_compile_together(name, cc, variants):
    if name != "native" and not _works(cc):
        pytest.skip(f"{cc[0]} is here but cannot compile C (no C library headers for it)")
    for order in (HEADERS, HEADERS[::-1]):
        # In an engine module Python.h comes first and sets the C library's
        # feature macros; a header cannot set them once another has included
        # a C library header (see platform.h), so this unit sets them too.
        unit = "#define _GNU_SOURCE 1\n" + "".join(f'#include "{h}"\n' for h in order)
        code, out = _compile(cc, unit, [])
        assert code == 0, f"{name}, {order}:\n{out}"


def test_platform_layer_is_the_only_system_threading():
    """team.h and resources.h (and every other header) use platform.h's names:
    only platform.h includes a threading, atomics, Windows or rusage header."""
    system = re.compile(r'^\s*#\s*include\s+<(pthread\.h|stdatomic\.h|windows\.h|'
                        r'process\.h|sched\.h|sys/resource\.h|intrin\.h)>', re.M)
    for header in HEADERS:
        if header != "platform.h":
            found = system.findall((CSRC / header).read_text())
            assert not found, f"{header} includes {found}: that belongs in platform.h"
    for header in ("team.h", "resources.h"):
        code = re.sub(r"/\*.*?\*/", "", (CSRC / header).read_text(), flags=re.S)
        found = re.findall(r"\b(pthread_\w+|atomic_\w+|_Atomic|getrusage|clock_gettime)\b",
                           code)
        assert not found, f"{header} uses {found}: platform.h's names instead"


def test_headers_do_not_depend_on_openmp():
    """No header reads _OPENMP: the serial build (-Dopenmp=disabled) compiles
    the same C; the OpenMP shim lives in the Cython engine."""
    for header in HEADERS:
        assert "_OPENMP" not in (CSRC / header).read_text(), header
