"""Input fuzzing against scikit-learn, and the regressions it found.

The fuzz itself lives in tests/_fuzz_worker.py and runs in a child process
(a crash in compiled code then fails one test instead of killing pytest; the
test owns the directory for the worker's files and removes it afterwards):
hypothesis draws arbitrary inputs for fit, partial_fit and predict, both
implementations are called on them, and the outcomes must agree (see the
worker's docstring). The example counts are modest: CI has two cores.

Below it, one deterministic test per disagreement the fuzz found, with
scikit-learn as the reference.
"""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import cymlp

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "_fuzz_worker.py")
EXAMPLES = {"fit": 300, "partial_fit": 200, "predict": 300}


def _run(args, timeout=900):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=HERE)
    if proc.returncode < 0:
        pytest.fail(f"the child process crashed with signal {-proc.returncode}:\n"
                    f"{proc.stdout[-5000:]}\n{proc.stderr[-10000:]}")
    return proc


def _worker_directory():
    """A directory for a fuzz worker's memory-mapped files, as a context manager.

    The test process creates it and removes it when the block ends, however
    the worker ended: a worker that crashed or was killed cannot clean up.
    """
    return tempfile.TemporaryDirectory(prefix="cymlp-fuzz-", ignore_cleanup_errors=True)


@pytest.mark.parametrize("target", list(EXAMPLES))
def test_fuzz_against_sklearn(target, global_random_seed):
    with _worker_directory() as directory:
        proc = _run([WORKER, target, str(global_random_seed), str(EXAMPLES[target]),
                     directory])
    assert proc.returncode == 0, (
        f"cymlp and scikit-learn disagree (replay: python tests/_fuzz_worker.py "
        f"{target} {global_random_seed} {EXAMPLES[target]}):\n"
        f"{proc.stdout[-5000:]}\n{proc.stderr[-15000:]}")


def _wait_for_npy(proc, directory):
    """Wait until the worker has written a .npy file below `directory`, or ended.

    Parameters
    ----------
    proc : subprocess.Popen
        The fuzz worker.
    directory : str
        Where its files are expected.

    Returns
    -------
    bool
        Whether a file was seen while the worker ran.
    """
    while proc.poll() is None:
        for _, _, files in os.walk(directory):
            if any(name.endswith(".npy") for name in files):
                return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("owner, sig", [
    ("test", signal.SIGKILL),     # killed: no chance to clean up
    ("test", signal.SIGSEGV),     # a crash (faulthandler dumps, then it dies)
    ("worker", signal.SIGTERM),   # run by hand, then terminated
    ("worker", None),             # run by hand to the end
], ids=["killed", "crashed", "standalone-terminated", "standalone-finished"])
def test_fuzz_worker_leaves_nothing_behind(owner, sig, monkeypatch):
    # The temporary directory (for this process and the worker) is a fresh
    # one of this test's own, so that other processes' files do not count:
    # it must be empty again once the worker has ended and the directory's
    # owner has cleaned up, as it was before. The reference is that listing.
    with tempfile.TemporaryDirectory() as root:
        monkeypatch.setattr(tempfile, "tempdir", root)
        env = {**os.environ, "TMPDIR": root}
        before = os.listdir(root)
        # enough examples that the worker memory-maps some input (one draw
        # in nine) long before it would end on its own
        n = "3" if sig is None else "300"
        if owner == "test":
            with _worker_directory() as directory:
                with subprocess.Popen([sys.executable, WORKER, "predict", "0", n, directory],
                                      cwd=HERE, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) as proc:
                    wrote = _wait_for_npy(proc, directory)
                    proc.send_signal(sig)
                # (not -sig: under AddressSanitizer a SIGSEGV ends in its report)
                assert proc.returncode != 0
                assert os.listdir(root) == [os.path.basename(directory)]
        else:
            with subprocess.Popen([sys.executable, WORKER, "predict", "0", n], cwd=HERE,
                                  env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) as proc:
                wrote = _wait_for_npy(proc, root)
                if sig is not None:
                    proc.send_signal(sig)
                _, err = proc.communicate()
            assert proc.returncode == (0 if sig is None else 128 + sig), err[-3000:]
        assert os.listdir(root) == before
        if sig is not None:
            assert wrote, "the worker ended before it wrote a file: nothing was tested"


def _outcome(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001
            return exc


# ---------------------------------------------------------------------------
# Malformed sparse matrices: must be rejected, never read out of bounds
# ---------------------------------------------------------------------------
_MALFORMED = textwrap.dedent("""
    import faulthandler, sys, warnings
    faulthandler.enable()
    import numpy as np, scipy.sparse as sp
    import cymlp
    warnings.simplefilter("ignore")
    rng = np.random.RandomState(0)
    y = rng.randint(2, size=40)
    failures = 0
    for fmt, case in (c.split(":") for c in sys.argv[1:]):
        good = sp.random(40, 4, density=0.5, format=fmt, random_state=0)
        for where in ("fit", "predict"):
            bad = good.copy()
            if case == "index-too-large":
                bad.indices[3] = 10**8
            elif case == "index-just-out":
                bad.indices[3] = 4 if fmt == "csr" else 40  # == n_features / n_samples
            elif case == "negative-index":
                bad.indices[3] = -1
            elif case == "indptr-past-end":
                bad.indptr[-1] = bad.nnz + 1000
            elif case == "indptr-decreasing":
                bad.indptr[1] = bad.indptr[2] + 1  # (a CSC of 4 columns has 5 pointers)
            est = cymlp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
            print(fmt, case, where, "...", end=" ", flush=True)
            try:
                if where == "fit":
                    est.fit(bad, y)
                else:
                    est.fit(good, y).predict_proba(bad)
            except ValueError as exc:
                print("ValueError:", exc, flush=True)
                continue
            print("NO ERROR", flush=True)
            failures += 1
    sys.exit(3 if failures else 0)
""")
MALFORMED_CASES = [f"{fmt}:{case}" for fmt in ("csr", "csc")
                   for case in ("index-too-large", "index-just-out", "negative-index",
                                "indptr-past-end", "indptr-decreasing")]


def test_malformed_sparse_input_is_rejected():
    # CSR (and CSC) matrices whose indices or index pointers are out of range
    # (scipy only checks them when asked: X.check_format(full_check=True)).
    # CSC input must be checked before it is converted to CSR: scipy's own
    # conversion writes out of bounds on a bad row index.
    # The engine's CSR products index the weights and the gradient with
    # them, unchecked: an index past the end reads (forward) and writes
    # (X^T @ delta) outside the buffers - silent garbage, heap corruption or
    # a segfault. Such input must be rejected with a ValueError, in fit and
    # in predict, before it reaches the kernels. (scikit-learn does not check
    # either: it computes garbage or segfaults inside scipy; cymlp promises
    # that no input reaches its kernels unvalidated.) One child process for
    # all cases; the last line it printed names the case that crashed it.
    proc = _run(["-c", _MALFORMED, *MALFORMED_CASES], timeout=300)
    assert proc.returncode == 0, (
        f"expected a ValueError for every malformed matrix, exit {proc.returncode}:\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}")


# ---------------------------------------------------------------------------
# Regressions found by the fuzz (scikit-learn is the reference)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("first, second", [(np.float32, np.float64),
                                           (np.float64, np.float32)],
                         ids=["f32-then-f64", "f64-then-f32"])
def test_continued_training_keeps_weight_dtype(first, second, how, global_random_seed):
    # scikit-learn updates its weights in place: training continued on data
    # of the other float dtype keeps the dtype of the first fit (and predicts
    # in numpy's promotion of the two). cymlp rebuilds its parameter buffer
    # in the new data's dtype.
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(30, 3))
    y = rng.randint(2, size=30)
    results = []
    for cls in (SkMLPClassifier, cymlp.MLPClassifier):
        if how == "partial_fit":
            est = cls(hidden_layer_sizes=(3,), random_state=0)
            est.partial_fit(X.astype(first), y, classes=[0, 1])
            est.partial_fit(X.astype(second), y)
        else:
            est = cls(hidden_layer_sizes=(3,), random_state=0, warm_start=True, max_iter=2)
            _outcome(lambda est=est: est.fit(X.astype(first), y))
            _outcome(lambda est=est: est.fit(X.astype(second), y))
        results.append(est)
    sk, cy = results
    assert [c.dtype for c in cy.coefs_] == [c.dtype for c in sk.coefs_]
    assert cy.predict_proba(X.astype(second)).dtype == sk.predict_proba(X.astype(second)).dtype


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("y", [np.array(["1", "2", "3", "4", "5", "6"]),
                               np.array(["a", "b", "c", "d", "e", "f"]),
                               np.array([b"1"] * 6)], ids=["numeric-str", "str", "bytes"])
def test_regressor_string_targets(y, solver):
    # scikit-learn's MLPRegressor keeps str / bytes targets as they are and
    # fails with a TypeError (numpy's subtract has no loop for them); cymlp
    # converts numeric strings to float and fits, or raises a ValueError
    X = np.random.RandomState(0).normal(size=(6, 3))
    sk = _outcome(lambda: SkMLPRegressor(solver=solver, max_iter=2).fit(X, y))
    cy = _outcome(lambda: cymlp.MLPRegressor(solver=solver, max_iter=2).fit(X, y))
    assert isinstance(sk, TypeError)
    assert isinstance(cy, TypeError), f"scikit-learn raises {sk!r}, cymlp gives {cy!r}"


def test_predict_on_categorical_frame():
    # A DataFrame of categorical string columns: scikit-learn's check_array
    # leaves the strings in an object array and its X @ coef raises TypeError;
    # cymlp converts to float and raises ValueError
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(20, 3)), rng.randint(2, size=20)
    df = pd.DataFrame({f"f{j}": pd.Categorical(["a", "b"] * 10) for j in range(3)})
    for Sk, Cy in [(SkMLPClassifier, cymlp.MLPClassifier),
                   (SkMLPRegressor, cymlp.MLPRegressor)]:
        sk = _outcome(lambda Sk=Sk: Sk(max_iter=2, random_state=0).fit(X, y).predict(df))
        cy = _outcome(lambda Cy=Cy: Cy(max_iter=2, random_state=0).fit(X, y).predict(df))
        assert isinstance(sk, TypeError)
        assert type(cy) is type(sk), f"scikit-learn raises {sk!r}, cymlp {cy!r}"


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_longdouble_input_output_dtype(sparse):
    # predictions for np.longdouble input: scikit-learn's X @ coef promotes
    # to longdouble; cymlp computes and returns float64 (documented)
    if np.dtype(np.longdouble) == np.dtype(np.float64):
        pytest.skip("longdouble is float64 on this platform")
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(20, 3)), rng.randint(3, size=20)
    Xl = X.astype(np.longdouble)
    Xl = sp.csr_matrix(Xl) if sparse else Xl
    for Sk, Cy, method in [(SkMLPClassifier, cymlp.MLPClassifier, "predict_proba"),
                           (SkMLPRegressor, cymlp.MLPRegressor, "predict")]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = getattr(Sk(max_iter=2, random_state=0).fit(X, y), method)(Xl)
            cy = getattr(Cy(max_iter=2, random_state=0).fit(X, y), method)(Xl)
        assert sk.dtype == np.longdouble
        # A documented deviation: the compiled engine works in float32 or
        # float64, so longdouble input is computed and returned in float64;
        # the values agree with scikit-learn's to float64 rounding.
        assert cy.dtype == np.float64, f"{Cy.__name__}.{method}: {cy.dtype}"
        np.testing.assert_allclose(cy, sk.astype(np.float64), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("scale", [1e39, 1e300])
def test_float32_regression_large_targets(scale, global_random_seed):
    # float32 X, targets beyond float32's range (finite in float64):
    # scikit-learn keeps y in float64, so its output deltas and gradients are
    # float64 and adam (which normalises the step) trains to finite weights.
    # cymlp once cast y to float32, where the targets become inf, and the fit
    # raised "non-finite parameter weights"; such targets now train in
    # scikit-learn's arithmetic from the start, float32 weights included
    # (tests/test_float32_extremes.py covers the targets float32 can hold).
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(20, 3)).astype(np.float32)
    y = rng.normal(size=20) * scale
    params = dict(solver="adam", max_iter=3, random_state=global_random_seed)
    sk = _outcome(lambda: SkMLPRegressor(**params).fit(X, y))
    cy = _outcome(lambda: cymlp.MLPRegressor(**params).fit(X, y))
    assert isinstance(sk, SkMLPRegressor)
    assert isinstance(cy, cymlp.MLPRegressor), f"scikit-learn fits, cymlp raises {cy!r}"
    assert all(np.isfinite(c).all() for c in cy.coefs_)
    assert all(c.dtype == np.float32 for c in cy.coefs_ + cy.intercepts_)
    np.testing.assert_allclose(cy.predict(X), sk.predict(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_changed_number_of_outputs_raises(how):
    # An undocumented deviation (scikit-learn's behaviour is a bug): after
    # training on 2 targets, continuing on 1 target makes scikit-learn
    # broadcast the (n, 2) outputs against the (n, 1) targets; it "succeeds"
    # with n_outputs_ = 1 and still predicts 2 columns. cymlp raises a
    # ValueError that names the mismatch.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(6, 3))
    y2, y1 = rng.normal(size=(6, 2)), rng.normal(size=6)

    def run(cls):
        if how == "partial_fit":
            est = cls(hidden_layer_sizes=(3,), random_state=0).partial_fit(X, y2)
            return _outcome(lambda: est.partial_fit(X, y1))
        est = cls(hidden_layer_sizes=(3,), random_state=0, warm_start=True,
                  max_iter=2)
        _outcome(lambda: est.fit(X, y2))
        return _outcome(lambda: est.fit(X, y1))

    sk = run(SkMLPRegressor)
    assert isinstance(sk, SkMLPRegressor) and sk.n_outputs_ == 1
    assert sk.predict(X).shape == (6, 2)  # scikit-learn's inconsistent state
    cy = run(cymlp.MLPRegressor)
    assert isinstance(cy, ValueError) and "do not match" in str(cy)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_zero_weight_minibatch_is_skipped(solver, global_random_seed):
    # Documented deviation: a minibatch whose sample weights are all zero is
    # skipped. scikit-learn averages its loss over the zero weight sum and
    # raises ZeroDivisionError (or, where the loss is not averaged, divides
    # its gradient by zero and ends with "non-finite parameter weights"). The
    # reference for cymlp's
    # result: scikit-learn trained without those samples (same batches
    # otherwise, same initial weights).
    rng = np.random.RandomState(global_random_seed)
    X = rng.normal(size=(24, 3))
    y = rng.randint(2, size=24)
    sw = rng.uniform(0.5, 2, size=24)
    sw[:4] = 0  # the whole first minibatch
    params = dict(hidden_layer_sizes=(5,), solver=solver, batch_size=4, shuffle=False,
                  max_iter=5, random_state=global_random_seed)
    sk = _outcome(lambda: SkMLPClassifier(**params).fit(X, y, sample_weight=sw))
    assert isinstance(sk, ZeroDivisionError) or (
        isinstance(sk, ValueError) and "non-finite" in str(sk)), sk
    cy = _outcome(lambda: cymlp.MLPClassifier(**params).fit(X, y, sample_weight=sw))
    assert isinstance(cy, cymlp.MLPClassifier), cy
    ref = _outcome(lambda: SkMLPClassifier(**params).fit(X[4:], y[4:], sample_weight=sw[4:]))
    for a, b in zip(ref.coefs_ + ref.intercepts_, cy.coefs_ + cy.intercepts_):
        np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-10)
