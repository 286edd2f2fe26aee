"""Data as the engine reads it: the one conversion, and a fit's rows.

``_BaseMLP._fit`` validates what the user passed (scikit-learn's checks) and,
once it knows the dtype the weights train in, converts X here, once; the
solver loops and the engine only read the result. Prediction converts its X
with the same function.
"""

import dataclasses

import numpy as np
import scipy.sparse as sp


def engine_input(X, dtype):
    """X as the engine reads it: C-contiguous rows, or CSR, of the given dtype.

    No copy when X already is (the common case: float32 or float64 C arrays);
    CSC input is converted to CSR once per fit or predict call.
    """
    if sp.issparse(X):
        # The compiled product reads X.indices as row offsets into the weights:
        # a hand-made matrix with an index out of range must raise here, not
        # read out of bounds (sklearn's validation does not look at indices),
        # and before scipy's own CSC -> CSR conversion, which trusts them too.
        X.check_format(full_check=True)
        return X.tocsr().astype(dtype, copy=False)
    return np.ascontiguousarray(X, dtype=dtype)


@dataclasses.dataclass(frozen=True)
class Rows:
    """Rows a fit trains or validates on, X already in the engine's form.

    ``y`` and ``given_weight`` stay as validated, in their own dtype:
    scikit-learn's float64 arithmetic beside float32 weights
    (:mod:`cymlp._float64_backward`) computes with them as they are.
    """

    X: object               # C-contiguous array or CSR matrix, in the working dtype
    y: np.ndarray           # the encoded targets, (n_samples, n_outputs)
    sample_weight: object   # in the working dtype, or None
    given_weight: object = None  # the sample weights before that cast, or None

    @property
    def n_samples(self):
        return self.X.shape[0]

    def targets(self):
        """``y`` in the working dtype, C-contiguous, for the engine."""
        return np.ascontiguousarray(self.y, dtype=self.X.dtype)

    def take(self, index):
        """These rows at ``index`` (a split): still in the engine's form, as
        rows of a C-contiguous array or a CSR matrix are."""
        return Rows(
            X=self.X[index],
            y=self.y[index],
            sample_weight=None if self.sample_weight is None else self.sample_weight[index],
            given_weight=None if self.given_weight is None else self.given_weight[index],
        )
