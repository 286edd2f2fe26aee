"""Bits unchanged: every case of tests/_bitwise_cases.py reproduces the
digest recorded before the engine became a package (issue #21), on one
thread and on two (lbfgs cases: the engine's loss and gradient, without
scipy's minimiser, whose own rounding depends on memory alignment).

The fixture holds this machine type's bits (its OpenBLAS kernels): on a
machine with another signature the digests cannot match and the test says
so instead of failing; the parity and thread tests still hold there.
Regenerate the fixture (``python tests/_bitwise_cases.py``) only for a
change that is meant to move bits, and say so in its commit.
"""

import json

import pytest
from threadpoolctl import threadpool_limits

from cymlp import _engine

from cymlp._engine import _testing

from _bitwise_cases import CASES, DTYPES, FIXTURE, machine_signature, run_case

with open(FIXTURE) as _f:
    _RECORDED = json.load(_f)


# the threaded runs must really run teams, busy machine or not
pytestmark = pytest.mark.usefixtures("teams_whatever_the_load")


def test_fixture_covers_every_case():
    assert set(_RECORDED["cases"]) == {f"{n}-{d}" for n in CASES for d in DTYPES}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", list(CASES))
def test_bits_as_recorded(name, dtype, threads):
    if machine_signature() != _RECORDED["signature"]:
        pytest.skip(f"fixture recorded on {_RECORDED['signature']}, "
                    f"this machine is {machine_signature()}")
    if threads > 1 and not _engine.OPENMP:
        pytest.skip("built without OpenMP: always serial (the one-thread case ran)")
    with threadpool_limits(threads):
        _testing._thread_stats()
        got = run_case(name, dtype)
        regions, _ = _testing._thread_stats()
    assert (regions > 0) == (threads > 1), regions  # the teams really ran
    want = _RECORDED["cases"][f"{name}-{dtype}"]
    assert got["sha256"] == want["sha256"], (got, want)
