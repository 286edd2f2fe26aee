"""Fork after threads: the child's engine calls finish, with the parent's bits.

GNU OpenMP cannot start its threads again in a process forked from one whose
teams ran: a child entering a parallel region waits forever for threads that
the fork did not copy. The engine therefore runs every call of such a child
on one thread (see ``csrc/team.h``, "Fork"), and since its results do not depend
on the number of threads, the child's weights and predictions are the same
bits as the parent's. Each case runs in a fresh interpreter with a time limit,
so a hang fails the test instead of the test run.
"""

import subprocess
import sys
import textwrap

import pytest

from cymlp import _engine

from cymlp._engine import _testing

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="os.fork is POSIX")

# What every case shares: data, a fit that forms teams of threads on two
# cores (512 hidden units), and a digest of a model's numbers to compare.
_PRELUDE = """
import hashlib, os, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
import cymlp
from cymlp import _engine
from cymlp._engine import _testing
_testing._contention(adapt=False)  # teams even on a busy machine: see csrc/team.h

rng = np.random.RandomState(SEED)
X = rng.normal(size=(400, 64))
y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 0)
X_big = rng.normal(size=(20000, 64))

def fit(seed=SEED, solver="adam"):
    return cymlp.MLPClassifier(hidden_layer_sizes=(512,), max_iter=3, solver=solver,
                               random_state=seed).fit(X, y)

def digest(est):
    h = hashlib.sha256()
    for a in est.coefs_ + est.intercepts_ + [est.predict_proba(X_big)]:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()

def wait(pid, limit=60.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    print("child hung")
    sys.exit(3)
"""


def _run(body, seed, timeout=240):
    code = _PRELUDE.replace("SEED", str(int(seed))) + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _needs_teams():
    if not _engine.OPENMP:
        pytest.skip("a serial build starts no teams")


# The parent's numbers travel through a pipe and the child compares (a
# mismatch or a hang exits non-zero); "threads" says the parent's calls really
# ran on teams, so the child really was forked after threads.
_FORK_AFTER = """
import json
with threadpool_limits_for_fit():
    parent = fit()
regions_fit, _ = _testing._thread_stats()
ref = digest(parent)  # predicts X_big: a threaded prediction in the parent
regions, _ = _testing._thread_stats()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        ok = _testing._forked_serial() and digest(fit()) == ref and digest(parent) == ref
        os.write(write, b"1" if ok else b"0")
    finally:
        os._exit(0)
code = wait(pid)
assert code == 0, code
assert os.read(read, 1) == b"1", "the child's numbers differ from the parent's"
assert not _testing._forked_serial()
print(json.dumps({"fit_regions": regions_fit, "predict_regions": regions}))
"""


@pytest.mark.parametrize("threaded", ["fit", "predict"])
def test_os_fork_after_threads(threaded, global_random_seed):
    """os.fork after a threaded fit (or only a threaded predict): the child
    fits and predicts at once, with the parent's bits."""
    _needs_teams()
    limits = (
        "import contextlib\nthreadpool_limits_for_fit = contextlib.nullcontext\n"
        if threaded == "fit" else
        "from threadpoolctl import threadpool_limits\n"
        "threadpool_limits_for_fit = lambda: threadpool_limits(1)\n"
    )
    out = _run(limits + _FORK_AFTER, global_random_seed)
    stats = __import__("json").loads(out.strip().splitlines()[-1])
    if threaded == "fit":
        assert stats["fit_regions"] > 0, "the parent's fit started no team"
    else:
        assert stats["fit_regions"] == 0
    assert stats["predict_regions"] > 0, "the parent's predict started no team"


def test_multiprocessing_fork_pool_after_threaded_fit(global_random_seed):
    """A fork-context multiprocessing Pool after a threaded fit: every worker
    trains and predicts, with the bits the parent gets for the same seeds."""
    _needs_teams()
    out = _run("""
    import multiprocessing
    fit()
    assert _testing._thread_stats()[0] > 0, "the parent's fit started no team"
    def work(seed):
        return _testing._forked_serial(), digest(fit(seed))
    seeds = [SEED, SEED + 1, SEED + 2, SEED + 3]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        result = pool.map_async(work, seeds)
        children = result.get(timeout=120)
    assert all(serial for serial, _ in children)
    assert [d for _, d in children] == [digest(fit(s)) for s in seeds]
    print("ok")
    """.replace("SEED", str(int(global_random_seed))), global_random_seed)
    assert out.strip().endswith("ok")


def test_joblib_multiprocessing_after_threaded_fit(global_random_seed):
    """joblib's multiprocessing backend (fork on Linux) after a threaded fit,
    lbfgs and adam: the workers finish with the parent's bits."""
    _needs_teams()
    pytest.importorskip("joblib")
    out = _run("""
    import multiprocessing
    from joblib import Parallel, delayed
    if multiprocessing.get_start_method() != "fork":
        print("ok")  # nothing to test where the default context does not fork
        sys.exit(0)
    fit()
    assert _testing._thread_stats()[0] > 0, "the parent's fit started no team"
    jobs = [(SEED, "adam"), (SEED, "lbfgs"), (SEED + 1, "adam")]
    def work(seed, solver):
        return digest(fit(seed, solver))
    children = Parallel(n_jobs=2, backend="multiprocessing", timeout=120)(
        delayed(work)(s, solver) for s, solver in jobs)
    assert children == [digest(fit(s, solver)) for s, solver in jobs]
    print("ok")
    """.replace("SEED", str(int(global_random_seed))), global_random_seed)
    assert out.strip().endswith("ok")


def test_child_of_a_process_without_teams_keeps_them(global_random_seed):
    """A child forked from a process whose engine never started a team (a
    fresh forkserver, a pre-fork server that only imported cymlp) still uses
    teams: the serial fallback applies only after threads ran."""
    _needs_teams()
    out = _run("""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _testing._thread_stats()
            fit()
            regions = _testing._thread_stats()[0]
            os.write(write, b"1" if regions > 0 and not _testing._forked_serial() else b"0")
        finally:
            os._exit(0)
    assert wait(pid) == 0
    print("teams" if os.read(read, 1) == b"1" else "serial")
    """, global_random_seed)
    assert out.strip().endswith("teams")
