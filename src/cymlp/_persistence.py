"""Pickling: what a model's pickle (and skops file) holds, and what it loads from.

``_PersistenceMixin`` keeps the on-disk form plain: the packed parameter
buffer is left out (``coefs_`` and ``intercepts_`` hold the weights, and the
next fit packs them again), and the stochastic optimizer is stored as a dict
of numbers, strings and arrays, so that skops loads it without trusting a
private class. Models pickled by older versions load too: a parameter added
since gets its default (what they trained with), and the optimizer object
that cymlp 0.1.0 pickled becomes today's.
"""

import inspect

from ._optimizers import _StochasticOptimizer, optimizer_from_dict
from ._training import _Optimizer as _Optimizer010


class _PersistenceMixin:
    """__getstate__ and __setstate__ of _BaseMLP."""

    def __getstate__(self):
        # a copy: on Python >= 3.11 the base class returns the live __dict__
        state = dict(super().__getstate__())
        # coefs_ and intercepts_ are views of the packed buffer; pickle would
        # store the weights twice
        state.pop("_params", None)
        if isinstance(state.get("_optimizer"), _StochasticOptimizer):
            state["_optimizer"] = state["_optimizer"].to_dict()
        return state

    def __setstate__(self, state):
        # cymlp 0.1.0 had no scoring, quantile, huber_delta
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if param.default is not param.empty:
                state.setdefault(name, param.default)
        super().__setstate__(state)
        optimizer = getattr(self, "_optimizer", None)
        if isinstance(optimizer, dict):
            self._optimizer = optimizer_from_dict(optimizer, self)
        elif isinstance(optimizer, _Optimizer010):
            self._optimizer = optimizer_from_dict(vars(optimizer), self)
