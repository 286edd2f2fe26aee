"""Put cymlp's estimators in place of scikit-learn's, and take them out again.

:func:`patch_sklearn` rebinds two names of the public module
``sklearn.neural_network`` (``MLPClassifier`` and ``MLPRegressor``) to
cymlp's classes; :func:`unpatch_sklearn` binds scikit-learn's own class
objects again. Nothing else changes: not scikit-learn's classes themselves,
not its other estimators, and not the private module
``sklearn.neural_network._multilayer_perceptron``. That module is where
scikit-learn's classes live and the name their pickles and skops files refer
to: patched, it would make an old scikit-learn pickle load as a cymlp
estimator with scikit-learn's internal state (which cymlp does not read),
and make a scikit-learn estimator created before the patch impossible to
pickle (pickle checks that the name still leads to the class).

``import cymlp`` does not import this module, nor ``sklearn.neural_network``:
``cymlp.patch_sklearn`` and its siblings are attributes that load on first
use. ``python -m cymlp.patch`` (``patch.py``) runs a script or module with
the patch applied.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["patch_sklearn", "sklearn_is_patched", "unpatch_sklearn"]

_MODULE = "sklearn.neural_network"
_NAMES = ("MLPClassifier", "MLPRegressor")

_logger = logging.getLogger("cymlp.patch")

# One lock for every change of the patch state, so that two threads
# patching at once cannot both record cymlp's class as "the original".
# Reentrant: a logging handler that reacts to our messages may call back in.
_lock = threading.RLock()

# name -> (the module object patched, the object it held before cymlp's
# class replaced it). The module object is kept because sklearn.neural_network
# may be removed from sys.modules and imported afresh (a new module with
# scikit-learn's classes); unpatching restores the one that was patched.
_originals: dict = {}


def _ours():
    # cymlp's own estimator modules are loaded by `import cymlp` already
    from ._classifier import MLPClassifier
    from ._regressor import MLPRegressor

    return {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}


def _names(estimators) -> tuple:
    """The estimator names an ``estimators`` argument selects, checked."""
    if estimators is None:
        return _NAMES
    if isinstance(estimators, str):
        estimators = [estimators]
    try:
        names = list(estimators)
    except TypeError:
        raise TypeError(
            "estimators must be None, a name such as 'MLPClassifier', or a "
            f"list of names; got {estimators!r}"
        ) from None
    unknown = [name for name in names if name not in _NAMES]
    if unknown:
        raise ValueError(
            f"cymlp replaces only {', '.join(_NAMES)}; got {unknown!r}"
        )
    # once each, in the order given
    return tuple(dict.fromkeys(names))


def _report(message: str, verbose: bool) -> None:
    _logger.info(message)
    if verbose:
        # stderr, so that a patched script's own output stays as it was
        print(f"cymlp: {message}", file=sys.stderr, flush=True)


def patch_sklearn(
    estimators: str | Iterable[str] | None = None, *, verbose: bool = False
) -> None:
    """Make scikit-learn's MLP estimators cymlp's, for code you did not write.

    After the call, ``sklearn.neural_network.MLPClassifier`` and
    ``sklearn.neural_network.MLPRegressor`` are :class:`cymlp.MLPClassifier`
    and :class:`cymlp.MLPRegressor`, so code that imports them from there
    afterwards (``from sklearn.neural_network import MLPClassifier``), or
    looks them up there when it runs (``sklearn.neural_network.MLPClassifier``
    after ``import sklearn.neural_network``), builds cymlp estimators: the
    same parameters and, for the same ``random_state``, the same trained
    weights, computed faster.

    A name that code bound before the call stays what it was: ``from
    sklearn.neural_network import MLPClassifier`` executed earlier keeps
    scikit-learn's class in that module, and estimators created earlier stay
    scikit-learn's. So call it first, or run the program with
    ``python -m cymlp.patch script.py``. The private module
    ``sklearn.neural_network._multilayer_perceptron`` is left alone, because
    pickles of scikit-learn's estimators name it. See
    :doc:`/user_guide/patching`.

    Calling it again changes nothing; it can be called from several threads
    at once. No other estimator is touched.

    Parameters
    ----------
    estimators : str or list of str, default=None
        Which names to replace: ``"MLPClassifier"``, ``"MLPRegressor"`` or a
        list of them. ``None`` replaces both.

    verbose : bool, default=False
        Print what was replaced (or found replaced already) to standard
        error. The same messages always go to the ``logging`` logger
        ``"cymlp.patch"`` at level INFO.

    Returns
    -------
    None

    See Also
    --------
    unpatch_sklearn : Put scikit-learn's classes back.
    sklearn_is_patched : Whether the names are cymlp's now.

    Examples
    --------
    >>> import cymlp
    >>> cymlp.patch_sklearn()
    >>> from sklearn.neural_network import MLPClassifier
    >>> MLPClassifier is cymlp.MLPClassifier
    True
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y)
    >>> type(clf).__module__
    'cymlp._classifier'
    >>> cymlp.unpatch_sklearn()
    >>> from sklearn.neural_network import MLPClassifier
    >>> MLPClassifier.__module__
    'sklearn.neural_network._multilayer_perceptron'
    """
    names = _names(estimators)
    ours = _ours()
    # Imported before taking the lock: an import holds the module's import
    # lock, and the two taken in opposite orders by two threads would wait
    # for each other forever.
    module = import_module(_MODULE)
    with _lock:
        for name in names:
            current = getattr(module, name)
            if current is ours[name]:
                _report(f"{_MODULE}.{name} is cymlp's already", verbose)
                continue
            # Keep the first record: if other code replaced cymlp's class
            # while patched, scikit-learn's is still the one to restore.
            record = _originals.get(name)
            if record is None or record[0] is not module:
                _originals[name] = (module, current)
            setattr(module, name, ours[name])
            _report(f"{_MODULE}.{name} -> cymlp.{name}", verbose)


def unpatch_sklearn(
    estimators: str | Iterable[str] | None = None, *, verbose: bool = False
) -> None:
    """Put scikit-learn's own MLP classes back after :func:`patch_sklearn`.

    ``sklearn.neural_network.MLPClassifier`` and ``MLPRegressor`` are again
    the very class objects they were before the patch. Estimators created
    while patched stay cymlp estimators (and keep working); names bound
    while patched keep cymlp's classes. Calling it when nothing is patched
    changes nothing.

    If other code rebound a name after cymlp patched it, that binding is
    left in place, with a warning: it is not cymlp's to undo.

    Parameters
    ----------
    estimators : str or list of str, default=None
        Which names to restore: ``"MLPClassifier"``, ``"MLPRegressor"`` or a
        list of them. ``None`` restores both.

    verbose : bool, default=False
        Print what was restored to standard error. The same messages always
        go to the ``logging`` logger ``"cymlp.patch"`` at level INFO.

    Returns
    -------
    None

    See Also
    --------
    patch_sklearn : Replace scikit-learn's classes by cymlp's.
    sklearn_is_patched : Whether the names are cymlp's now.

    Examples
    --------
    >>> import sklearn.neural_network
    >>> import cymlp
    >>> original = sklearn.neural_network.MLPRegressor
    >>> cymlp.patch_sklearn("MLPRegressor")
    >>> sklearn.neural_network.MLPRegressor is cymlp.MLPRegressor
    True
    >>> cymlp.unpatch_sklearn()
    >>> sklearn.neural_network.MLPRegressor is original
    True
    """
    names = _names(estimators)
    ours = _ours()
    with _lock:
        for name in names:
            record = _originals.pop(name, None)
            if record is None:
                _report(f"{_MODULE}.{name} was not patched", verbose)
                continue
            module, original = record
            current = getattr(module, name, None)
            if current is ours[name]:
                setattr(module, name, original)
                _report(f"{_MODULE}.{name} is scikit-learn's again", verbose)
            else:
                message = (
                    f"{_MODULE}.{name} was rebound to {current!r} after "
                    "cymlp patched it; left as it is"
                )
                _report(message, verbose)
                warnings.warn(message, RuntimeWarning, stacklevel=2)


def sklearn_is_patched(estimators: str | Iterable[str] | None = None) -> bool:
    """Whether scikit-learn's MLP names lead to cymlp's classes now.

    This looks at ``sklearn.neural_network`` itself, not at a record kept by
    :func:`patch_sklearn`, so it also sees names rebound by other code. It
    never imports ``sklearn.neural_network``: not imported means not
    patched.

    Parameters
    ----------
    estimators : str or list of str, default=None
        Which names to ask about: ``"MLPClassifier"``, ``"MLPRegressor"`` or
        a list of them. ``None`` asks about both.

    Returns
    -------
    patched : bool
        True when every name asked about is cymlp's class.

    See Also
    --------
    patch_sklearn : Replace scikit-learn's classes by cymlp's.
    unpatch_sklearn : Put scikit-learn's classes back.

    Examples
    --------
    >>> import cymlp
    >>> cymlp.sklearn_is_patched()
    False
    >>> cymlp.patch_sklearn("MLPClassifier")
    >>> cymlp.sklearn_is_patched("MLPClassifier"), cymlp.sklearn_is_patched()
    (True, False)
    >>> cymlp.unpatch_sklearn()
    """
    names = _names(estimators)
    module = sys.modules.get(_MODULE)
    if module is None:
        return False
    ours = _ours()
    return all(getattr(module, name, None) is ours[name] for name in names)
