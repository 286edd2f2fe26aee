"""Near a resource limit, an engine call succeeds or raises MemoryError.

Neither GNU OpenMP nor OpenBLAS reports a failure to its caller: libgomp
exits the process when it cannot create a thread ("libgomp: Thread creation
failed"), and OpenBLAS (0.3.30 and before) retries a work buffer it cannot
map forever, while the other member of the engine's team waits for it at a
barrier. The engine makes sure of both before a call starts (csrc/resources.h)
and otherwise runs the call on one thread, or raises MemoryError.

Each case runs in a fresh interpreter (the first threaded call of a process
is the one that creates threads and buffers) under ``RLIMIT_AS`` set at a
margin above the address space it has mapped by then (VmSize): margins in
the band where the old engine exited (less than a thread's stack), in the
band where it hung (less than a stack and OpenBLAS's buffers), and above.
The call must either finish with the same bits as without a limit (the
engine's results do not depend on the number of threads) or raise
MemoryError with a message; the child must never exit otherwise or hang.
"""

import hashlib
import json
import os
import resource
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_limits

import cymlp
from cymlp import _engine
from cymlp._engine import _testing

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.exists("/proc/self/status"),
    reason="the margins are read from /proc/self/status (VmSize), on Linux")

MiB = 2**20

# Large enough that the epochs, the validation loss and the prediction form
# teams of two threads.
_SHAPES = dict(n_samples=2000, n_features=100, hidden=(256,), batch=500, n_predict=10000)


def _data(seed):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(_SHAPES["n_samples"], _SHAPES["n_features"]))
    y = rng.randint(3, size=_SHAPES["n_samples"])
    X_predict = rng.normal(size=(_SHAPES["n_predict"], _SHAPES["n_features"]))
    return X, y, X_predict


def _estimator(seed):
    return cymlp.MLPClassifier(hidden_layer_sizes=_SHAPES["hidden"], max_iter=2,
                               batch_size=_SHAPES["batch"], early_stopping=True,
                               n_iter_no_change=5, random_state=seed)


def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


_CHILD = textwrap.dedent(r"""
    import json, resource, sys, warnings
    warnings.simplefilter("ignore")
    sys.path[:0] = json.loads(sys.argv[4])
    from test_resource_limits import _data, _estimator, _digest
    from threadpoolctl import threadpool_limits
    from cymlp import _engine
    from cymlp._engine import _testing

    scenario, seed, margin = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    _testing._contention(adapt=False)  # teams even on a busy machine: see csrc/team.h
    X, y, X_predict = _data(seed)
    est = _estimator(seed)
    if scenario == "predict":
        # fitted on one thread: the prediction is the first threaded call
        with threadpool_limits(1, user_api="openmp"):
            est.fit(X, y)

    def vm_size():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    limit = vm_size() + margin
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    _testing._thread_stats()
    try:
        if scenario == "fit":
            est.fit(X, y)
            got = _digest(est.coefs_ + est.intercepts_ + [est.loss_curve_])
        else:
            got = _digest([est.predict_proba(X_predict)])
    except MemoryError as exc:
        report = {"outcome": "MemoryError", "message": str(exc)}
    else:
        report = {"outcome": "ok", "digest": got, "regions": _testing._thread_stats()[0]}
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print(json.dumps(report))
""")


def _reference(scenario, seed):
    X, y, X_predict = _data(seed)
    est = _estimator(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    if scenario == "fit":
        return _digest(est.coefs_ + est.intercepts_ + [est.loss_curve_])
    return _digest([est.predict_proba(X_predict)])


def _margins():
    """MiB above VmSize: inside a thread's stack (where libgomp exited),
    between a stack and a stack plus OpenBLAS's buffers (where OpenBLAS
    spun), and above both. From this machine's sizes."""
    buffer = _testing._resources()["blas_buffer_bytes"] or 32 * MiB
    stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
    if stack == resource.RLIM_INFINITY or stack <= 0:
        stack = 8 * MiB
    team = stack + buffer  # what a second thread newly needs
    return sorted({1, max(2, stack // (2 * MiB)), (stack + buffer // 2) // MiB,
                   team // MiB + 4, (2 * team) // MiB + 16, (4 * team) // MiB + 64})


def _run_child(scenario, seed, margin_mib, timeout=120):
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, OMP_NUM_THREADS="2")  # a team even on one core
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, scenario, str(seed), str(margin_mib * MiB),
             json.dumps([tests])],
            capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{scenario} under a limit of VmSize + {margin_mib} MiB hung "
                    f"(no end within {timeout} s): {exc.stdout!r} {exc.stderr!r}")
    assert proc.returncode == 0, (
        f"{scenario} under a limit of VmSize + {margin_mib} MiB exited with "
        f"{proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: no threads to create")
@pytest.mark.parametrize("scenario", ["fit", "predict"])
def test_threaded_call_under_address_space_limit(scenario, global_random_seed):
    ref = _reference(scenario, global_random_seed)
    outcomes = []
    for margin in _margins():
        report = _run_child(scenario, global_random_seed, margin)
        outcomes.append((margin, report["outcome"]))
        if report["outcome"] == "ok":
            assert report["digest"] == ref, (
                f"{scenario} under VmSize + {margin} MiB: not the bits of an unlimited run")
        else:
            assert report["outcome"] == "MemoryError"
            assert report["message"].strip(), f"a MemoryError without a message at {margin} MiB"
            if report["message"].startswith("cymlp:"):
                assert "could not allocate" in report["message"]
                assert "bytes" in report["message"] or "MiB" in report["message"]
    # the widest margin leaves room for everything, on two threads
    assert outcomes[-1][1] == "ok", outcomes


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: no threads to create")
def test_failed_thread_probe_runs_the_call_on_one_thread(teams_whatever_the_load,
                                                         global_random_seed):
    X, y, X_predict = _data(global_random_seed)
    with threadpool_limits(2, user_api="openmp"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _testing._thread_stats()
        ref = _estimator(global_random_seed).fit(X, y)
        ref_proba = ref.predict_proba(X_predict)
        regions, _ = _testing._thread_stats()
        assert regions > 0, "the reference did not run on teams: shapes too small"

        _testing._resources(probe_fails=True)
        try:
            est = _estimator(global_random_seed).fit(X, y)
            proba = est.predict_proba(X_predict)
            regions, _ = _testing._thread_stats()
            found = _testing._resources()
        finally:
            _testing._resources(probe_fails=False)
    assert regions == 0, "a call whose probe failed still opened a parallel region"
    assert found["probes_failed"] > 0
    for a, b in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        assert_array_equal(a, b, strict=True)
    assert_array_equal(est.loss_curve_, ref.loss_curve_, strict=True)
    assert_array_equal(proba, ref_proba, strict=True)


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: no threads to create")
def test_thread_probe_runs_once_per_calling_thread(teams_whatever_the_load, global_random_seed):
    """The probe runs when a call needs more threads than libgomp keeps for
    the calling thread: the first threaded call of a fresh thread, then not
    again while its teams do not grow."""
    X, y, X_predict = _data(global_random_seed)
    found = {}

    def work():
        with threadpool_limits(2, user_api="openmp"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _testing._resources()
            _testing._thread_stats()
            est = _estimator(global_random_seed).fit(X, y)
            found["first fit"] = _testing._resources()["probes"]
            est.fit(X, y)
            est.predict_proba(X_predict)
            found["later calls"] = _testing._resources()["probes"]
            found["regions"] = _testing._thread_stats()[0]

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert found["regions"] > 0
    assert found == {"first fit": 1, "later calls": 0, "regions": found["regions"]}


def test_openblas_work_buffer_measured():
    """The scipy wheels' OpenBLAS keeps one table of work buffers for the
    process; the engine measured one buffer's size when it was imported."""
    found = _testing._resources()
    if found["blas"] is None:
        pytest.skip("scipy's BLAS is not OpenBLAS, or its allocator is not exported")
    assert found["blas"] in ("shared", "per-thread")
    assert found["blas_buffer_bytes"] is not None and found["blas_buffer_bytes"] >= MiB
    if found["blas"] == "shared":
        assert found["blas_buffers"] >= 1
