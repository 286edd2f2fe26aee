"""Fitted attributes are published only when complete.

Monitoring or checkpointing a model from another thread while it trains is a
real pattern. The thread that trains replaces its fitted attributes by new,
completely filled objects, and never writes an array (or list) once other
threads can see it; so whatever another thread reads -- ``coefs_``,
``intercepts_``, ``_params``, the optimizer's moments, the loss curve,
predictions, a deep copy or a pickle -- is a state that training published,
never one half-written (the bug: ``coefs_`` pointed at an unfilled
``np.empty`` buffer, values like 1e300, and the engine and the optimizer
updated the visible arrays in place during an epoch).

The threaded tests record, in the training thread, every state it publishes
(after each partial_fit call, after each epoch through the ``callbacks`` hook,
before and after an lbfgs fit), and let reader threads run throughout. A
reader's snapshot is reduced to a digest of its bytes; afterwards every digest
must be one of the recorded states'. Nothing depends on timing: a reader
that happens to see few states checks few, and the test still passes or
fails on what it saw.
"""

import copy
import functools
import hashlib
import pickle
import sys
import threading

import numpy as np
import pytest
from sklearn.base import clone

import cymlp

pytestmark = pytest.mark.usefixtures("one_blas_thread", "quiet")

N_READERS = 4


def _digest(*arrays):
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(memoryview(a).cast("B"))
    return h.digest()


def _flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


def _data(seed, n=1500, n_features=40, n_classes=3):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    y = np.argmax(X[:, :n_classes] + 0.5 * rng.normal(size=(n, n_classes)), axis=1)
    return X, y


def _predict(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _state(est, probe, whole=True):
    """What a reader may see of one published state: the digests of the
    packed buffer, of coefs_, of intercepts_ and of the predictions on probe,
    and (whole=True) that of the whole training state."""
    return dict(
        params=_digest(est._params),
        coefs=_digest(_flat(est.coefs_)),
        intercepts=_digest(_flat(est.intercepts_)),
        predictions=_digest(_predict(est, probe)),
        whole=_whole(est) if whole else None,
    )


def _whole(est):
    """The training state as a unit: weights with their loss curve, t_ and
    optimizer moments. Two readings of it agree only if all were read from
    one publication."""
    return (_digest(_flat(est.coefs_), _flat(est.intercepts_)),
            _digest(np.asarray(est.loss_curve_)), est.t_,
            _digest(*est._optimizer.moments()))


class _Readers:
    """Reader threads that predict, deep-copy, clone, pickle and read the
    weights of ``est`` until stopped, recording digests of what they saw and
    any exception."""

    def __init__(self, est, probe, whole=True, ops=None):
        self.est, self.probe, self.whole = est, probe, whole
        self.ops = ops or ["_read_params", "_read_weights", "_read_predictions",
                           "_deepcopy", "_pickle", "_clone"]
        self.params = est.get_params()
        self.seen = {key: set() for key in ("params", "coefs", "intercepts",
                                            "predictions", "whole")}
        self.largest = 0.0  # the largest |weight| seen, for the failure message
        self.errors = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        # the training thread starts once every reader has read once
        self.ready = threading.Barrier(N_READERS + 1)
        self.threads = [threading.Thread(target=self._run, args=(k,))
                        for k in range(N_READERS)]

    def _see(self, key, digest, arrays=()):
        with self.lock:
            self.seen[key].add(digest)
            for a in arrays:
                if a.size:
                    self.largest = max(self.largest, float(np.max(np.abs(a))))

    def _copied(self, copied):
        # a copy is one snapshot of the whole estimator: its weights, curve,
        # t_ and moments must all come from one publication
        self._see("coefs", _digest(_flat(copied.coefs_)), copied.coefs_)
        self._see("intercepts", _digest(_flat(copied.intercepts_)), copied.intercepts_)
        self._see("predictions", _digest(_predict(copied, self.probe)))
        if self.whole:
            self._see("whole", _whole(copied))

    def _read_params(self):
        params = self.est._params  # one reference, then the whole buffer
        self._see("params", _digest(params), [params])

    def _read_weights(self):
        coefs = self.est.coefs_
        self._see("coefs", _digest(_flat(coefs)), coefs)
        # the buffer the views are of: coefs_ and intercepts_ at once
        self._see("params", _digest(coefs[0].base), [coefs[0].base])
        intercepts = self.est.intercepts_
        self._see("intercepts", _digest(_flat(intercepts)), intercepts)

    def _read_predictions(self):
        self._see("predictions", _digest(_predict(self.est, self.probe)))

    def _deepcopy(self):
        self._copied(copy.deepcopy(self.est))

    def _pickle(self):
        self._copied(pickle.loads(pickle.dumps(self.est)))

    def _clone(self):
        params = clone(self.est).get_params()
        # the callbacks parameter is deep-copied: a new, equivalent object
        params["callbacks"] = self.params["callbacks"]
        if params != self.params:
            raise AssertionError("clone changed the parameters: %r" % params)

    def _run(self, k):
        ops = [getattr(self, name) for name in self.ops]
        ops = ops[k % len(ops):] + ops[:k % len(ops)]
        first = True
        try:
            while first or not self.stop.is_set():
                for op in ops:
                    op()
                if first:
                    first = False
                    self.ready.wait()
        except Exception as exc:  # noqa: BLE001 -- reported by check()
            self.errors.append(exc)
            if first:
                self.ready.abort()

    def __enter__(self):
        # Switching threads as often as Python can makes a reader likely to
        # run inside even a short window of the training thread (the bug's
        # np.empty buffer was bound for a few bytecodes only).
        self.interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        for t in self.threads:
            t.start()
        try:
            self.ready.wait()
        except threading.BrokenBarrierError:
            self.__exit__()
            raise AssertionError("a reader failed before training: %r" % self.errors)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()
        sys.setswitchinterval(self.interval)

    def check(self, published):
        """Every digest a reader saw is one of a published state's."""
        assert not self.errors, self.errors
        for key, digests in self.seen.items():
            allowed = {state[key] for state in published}
            unknown = digests - allowed
            assert not unknown, (
                "readers saw %d %s state(s) that training never published "
                "(of %d seen; largest |weight| seen: %g)"
                % (len(unknown), key, len(digests), self.largest)
            )
        assert self.seen["coefs"] and self.seen["predictions"]


def _model(seed, solver="adam", **params):
    # a wide layer and small batches: many in-place updates per epoch were
    # there to be seen, and the engine spends most of the time without the GIL
    defaults = dict(hidden_layer_sizes=(256,), batch_size=25, solver=solver,
                    learning_rate_init=1e-3, random_state=seed)
    return cymlp.MLPClassifier(**{**defaults, **params})


@pytest.mark.parametrize(
    "solver, dtype, dropout",
    [("adam", np.float64, 0.0), ("sgd", np.float32, 0.0), ("adam", np.float32, 0.2)],
    ids=["adam-f64", "sgd-f32", "adam-dropout-f32"],
)
def test_partial_fit_readers_see_only_published_states(solver, dtype, dropout,
                                                        global_random_seed):
    """Readers during repeated partial_fit see only states it published.

    Readers read ``_params``, ``coefs_`` and ``intercepts_``, predict, deep-copy,
    pickle and clone while the main thread calls partial_fit; each snapshot
    must equal the state after one of the calls exactly. A copy or a pickle
    must also be whole: the weights of call k with the loss curve, ``t_`` and
    the optimizer moments of call k (all published in one step).
    """
    X, y = _data(global_random_seed)
    X = X.astype(dtype)
    probe = X[:8]
    est = _model(global_random_seed, solver, dropout=dropout)
    est.partial_fit(X, y, classes=np.unique(y))
    published = [_state(est, probe)]
    with _Readers(est, probe) as readers:
        for _ in range(25):
            est.partial_fit(X, y)
            published.append(_state(est, probe))
    readers.check(published)


# The states recorded by the callbacks of a running test. The callback is a
# partial of a module-level function, so that readers can pickle the model.
_RECORDED = {}


def _record(key, probe, info):
    _RECORDED[key].append(_state(info["estimator"], probe))
    return False


@pytest.mark.parametrize("early_stopping", [False, True], ids=["plain", "early-stopping"])
def test_fit_epochs_readers_see_only_published_states(early_stopping, global_random_seed):
    """Readers during multi-epoch fits see only the states of whole epochs.

    A warm-started fit of several epochs runs three times while readers read;
    the ``callbacks`` hook records the state after every epoch. Early stopping
    ends by restoring the best epoch's weights: published as a buffer of
    their own, so readers see a recorded epoch's weights then too. (Whole
    states are not compared with early stopping: the restored weights come
    with the last epoch's loss curve, by design.)
    """
    X, y = _data(global_random_seed)
    probe = X[:8]
    key = "fit-%s-%d" % (early_stopping, global_random_seed)
    published = _RECORDED[key] = []
    try:
        est = _model(global_random_seed, warm_start=True, max_iter=8,
                     callbacks=functools.partial(_record, key, probe),
                     early_stopping=early_stopping, n_iter_no_change=2, tol=0.0)
        est.fit(X, y)
        published.append(_state(est, probe))
        with _Readers(est, probe, whole=not early_stopping) as readers:
            for _ in range(3):
                est.fit(X, y)
                published.append(_state(est, probe))
        readers.check(published)
    finally:
        del _RECORDED[key]


def test_lbfgs_readers_see_weights_before_or_after(global_random_seed):
    """lbfgs publishes once, at its end: readers see the weights from before
    a fit or from after it, never an unfilled buffer.

    The windows to catch are short (binding the buffer, then filling it
    layer by layer): many short fits of a deep network, and readers that
    only read the weights and predict.
    """
    X, y = _data(global_random_seed, n=300)
    probe = X[:8]
    est = _model(global_random_seed, "lbfgs", hidden_layer_sizes=(32,) * 6, max_iter=5,
                 warm_start=True).fit(X, y)
    # lbfgs keeps no loss curve nor optimizer: no whole states
    published = [_state(est, probe, whole=False)]
    with _Readers(est, probe, whole=False,
                  ops=["_read_weights", "_read_predictions"]) as readers:
        for _ in range(40):
            est.fit(X, y)
            published.append(_state(est, probe, whole=False))
    readers.check(published)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("early_stopping", [False, True], ids=["plain", "early-stopping"])
def test_published_objects_are_never_changed_again(solver, early_stopping,
                                                    global_random_seed):
    """Arrays, lists and the optimizer a reader got hold of keep their values.

    Without threads: hold ``_params``, ``coefs_``, ``intercepts_``, the loss
    curves and the optimizer (its moments, rate and step count), train more,
    and everything held must be unchanged -- training rebinds the attributes
    to new objects instead of writing into the old ones. ``tol`` is so large
    that no epoch counts as an improvement: sgd's adaptive schedule divides
    its rate (a new optimizer, not a changed one), and early stopping stops
    and restores the best weights (a buffer published again, not copied in).
    """
    X, y = _data(global_random_seed, n=300, n_features=10)
    est = _model(global_random_seed, solver, hidden_layer_sizes=(16,), max_iter=6,
                 warm_start=True, early_stopping=early_stopping, learning_rate="adaptive",
                 n_iter_no_change=2, tol=10.0)
    est.fit(X, y)
    names = ["_params", "coefs_", "intercepts_", "loss_curve_", "_optimizer"]
    if early_stopping:
        names += ["validation_scores_", "validation_loss_curve_"]
    held = {name: getattr(est, name) for name in names}
    before = copy.deepcopy(held)
    if early_stopping:
        est.fit(X, y)
    else:
        for _ in range(4):
            est.partial_fit(X, y)
    assert est._params is not held["_params"]
    if solver == "sgd" and not early_stopping:
        # the adaptive schedule did divide the rate meanwhile
        assert est._optimizer.learning_rate < held["_optimizer"].learning_rate
    for name, value in held.items():
        if name == "_optimizer":
            assert vars(value).keys() == vars(before[name]).keys()
            for key, item in vars(value).items():
                np.testing.assert_array_equal(item, vars(before[name])[key], err_msg=key)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, before[name], err_msg=name)
        elif name in ("coefs_", "intercepts_"):
            for a, b in zip(value, before[name]):
                np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert value == before[name], name
