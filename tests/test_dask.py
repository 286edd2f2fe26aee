"""cymlp on a dask cluster: a grid search through joblib's dask backend, and
dask-ml's Incremental wrapper streaming the blocks of a dask array through
partial_fit. Both must give what the same work gives in one process."""

import warnings

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")

from cymlp import MLPClassifier  # noqa: E402

CHUNK = 300


@pytest.fixture(scope="module")
def client():
    # two worker processes with one thread each, as two small machines would be
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="1GiB",
        dashboard_address=None,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_grid_search_on_dask_matches_serial(client, digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=25, random_state=0))
    grid = {
        "mlpclassifier__hidden_layer_sizes": [(16,), (32,)],
        "mlpclassifier__alpha": [1e-4, 1e-1],
    }
    serial = GridSearchCV(pipe, grid, cv=3).fit(X, y)

    with (
        distributed.get_task_stream(client) as stream,
        joblib.parallel_config(backend="dask"),
    ):
        on_dask = GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(X, y)

    # the fits ran as tasks on the cluster's worker processes
    workers = {task["worker"] for task in stream.data}
    assert len(stream.data) > 0
    assert workers <= set(client.scheduler_info()["workers"])
    # same seeds, same data: the same scores and the same winner
    np.testing.assert_allclose(
        on_dask.cv_results_["mean_test_score"],
        serial.cv_results_["mean_test_score"],
        rtol=0,
        atol=1e-12,
    )
    assert on_dask.best_params_ == serial.best_params_
    np.testing.assert_allclose(
        on_dask.predict_proba(X), serial.predict_proba(X), rtol=0, atol=1e-12
    )


def test_incremental_partial_fit_over_dask_blocks(client, digits):
    X, y = digits
    classes = np.unique(y)
    X_dask = da.from_array(X, chunks=(CHUNK, X.shape[1]))
    y_dask = da.from_array(y, chunks=CHUNK)
    n_passes = 4

    inc = dask_ml_wrappers.Incremental(
        MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0),
        scoring="accuracy",
        shuffle_blocks=False,
    )
    for _ in range(n_passes):
        inc.partial_fit(X_dask, y_dask, classes=classes)

    # the same blocks through partial_fit in one process, in the same order
    serial = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    for _ in range(n_passes):
        for start in range(0, X.shape[0], CHUNK):
            block = slice(start, start + CHUNK)
            serial.partial_fit(X[block], y[block], classes=classes)

    fitted = inc.estimator_
    assert fitted.t_ == serial.t_ == n_passes * X.shape[0]
    for a, b in zip(fitted.coefs_ + fitted.intercepts_, serial.coefs_ + serial.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)

    # prediction stays lazy over the blocks and agrees with the local model
    predicted = inc.predict(X_dask)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), serial.predict(X))
    assert inc.score(X_dask, y_dask) == pytest.approx(serial.score(X, y))
    assert serial.score(X, y) > 0.8
