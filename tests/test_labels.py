"""Class labels to and from the network's outputs, against LabelBinarizer.

cymlp fits its label binarizer without LabelBinarizer.fit's checks for plain
integer labels, and decodes float scores without inverse_transform's
per-call checks. Both must give exactly what LabelBinarizer gives.
"""

import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.preprocessing import LabelBinarizer

from cymlp._classifier import _decode_labels, _fitted_label_binarizer


def _assert_same_binarizer(ours, ref):
    assert set(vars(ours)) == set(vars(ref))
    for name, value in vars(ref).items():
        mine = getattr(ours, name)
        if isinstance(value, np.ndarray):
            assert mine.dtype == value.dtype, name
            assert_array_equal(mine, value, err_msg=name)
        else:
            assert mine == value and type(mine) is type(value), name


LABELS = {
    "one-class": [4, 4, 4],
    "two-classes": [1, 0, 1, 1],
    "two-negative": [-3, 7, 7],
    "ten-classes": list(range(10)) * 2,
    "unsorted-gaps": [40, -2, 9, 9, 100, -2],
    "one-sample": [5],
}
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, np.intp]


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", list(LABELS))
def test_fitted_binarizer_matches_labelbinarizer(case, dtype):
    values = LABELS[case]
    if np.dtype(dtype).kind == "u" and min(values) < 0:
        pytest.skip("negative labels in an unsigned dtype")
    y = np.asarray(values, dtype=dtype)
    _assert_same_binarizer(_fitted_label_binarizer(y), LabelBinarizer().fit(y))


@pytest.mark.parametrize("y", [
    np.array(["b", "a", "b"]), np.array([0.0, 1.0, 2.0]), np.array([True, False]),
    np.array([[0, 1], [1, 1]]), np.array([1, 2], dtype=object), [3, 1, 3],
], ids=["str", "float", "bool", "multilabel", "object", "list"])
def test_other_targets_take_labelbinarizer(y):
    try:
        ref = LabelBinarizer().fit(y)
    except ValueError as exc:  # e.g. object labels: the same error from both
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            _fitted_label_binarizer(y)
        return
    _assert_same_binarizer(_fitted_label_binarizer(y), ref)


def _scores(rng, shape, dtype):
    Y = rng.random_sample(shape).astype(dtype)
    flat = Y.reshape(-1)
    # exact ties, the threshold itself, NaN and infinities
    flat[rng.randint(flat.size, size=3)] = 0.5
    flat[rng.randint(flat.size)] = np.nan
    flat[rng.randint(flat.size)] = np.inf
    flat[rng.randint(flat.size)] = -np.inf
    if Y.ndim == 2 and Y.shape[1] > 1:
        Y[0, :] = Y[0, 0]  # a row of ties
    return Y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("labels, shape", [
    (np.array([3, 1, 2, 3, 7]), (50, 4)),
    (np.array(["x", "y", "z"]), (50, 3)),
    (np.array([0, 1]), (50,)),
    (np.array([-1, 1]), (50, 1)),
    (np.array(["no", "yes"]), (50,)),
    (np.array([9, 9]), (50,)),
], ids=["multiclass-int", "multiclass-str", "binary-1d", "binary-column",
        "binary-str", "one-class"])
def test_decode_matches_inverse_transform(labels, shape, dtype, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    lb = LabelBinarizer().fit(labels)
    Y = _scores(rng, shape, dtype)
    expected = lb.inverse_transform(Y.copy())
    got = _decode_labels(lb, Y)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert_array_equal(got, expected)


def test_decode_falls_back_for_multilabel_and_indicator_input():
    lb = LabelBinarizer().fit(np.array([[0, 1, 1], [1, 0, 0]]))
    Y = np.array([[0.2, 0.7, 0.5], [0.9, 0.1, 0.6]])
    assert_array_equal(_decode_labels(lb, Y), lb.inverse_transform(Y))
    lb = LabelBinarizer().fit(np.array([2, 5, 8]))
    Y_bool = np.array([[False, True, False]])
    assert_array_equal(_decode_labels(lb, Y_bool), lb.inverse_transform(Y_bool))
