"""Shared pytest configuration for the cymlp test suite.

The ``global_random_seed`` fixture follows the idea of scikit-learn's
``sklearn/tests/random_seed.py``: a test that uses it must pass for *any*
seed, yet a default run is deterministic. The environment variable
``CYMLP_TEST_SEED`` selects the seeds:

- unset            -> 42
- ``"17"``         -> 17
- ``"any"``        -> one seed drawn at random (printed in the header and in
                      every test id, so a failure can be replayed with
                      ``CYMLP_TEST_SEED=<seed>``)
- ``"0-9"``        -> every seed from 0 to 9 inclusive (tests are
                      parametrized over all of them)

The seed appears in the test id as ``seed=<n>``.
"""

import os
import random
import warnings

import pytest
from threadpoolctl import threadpool_limits

_SEED_ENV = "CYMLP_TEST_SEED"
_DEFAULT_SEED = 42


def _parse_seeds(value):
    """Return the list of seeds described by the environment variable value."""
    if value is None or value.strip() == "":
        return [_DEFAULT_SEED]
    value = value.strip()
    try:
        if value.lower() == "any":
            # Not reached after pytest_configure, which replaces "any" by the
            # drawn seed; kept so the function is total.
            return [random.SystemRandom().randrange(10_000)]
        if "-" in value:
            start, stop = value.split("-")
            seeds = list(range(int(start), int(stop) + 1))
        else:
            seeds = [int(value)]
    except ValueError:
        seeds = []
    # numpy's RandomState accepts seeds in [0, 2**32 - 1].
    if not seeds or min(seeds) < 0 or max(seeds) > 2**32 - 1:
        raise pytest.UsageError(
            f"{_SEED_ENV} must be a non-negative int, 'any', or a range such as "
            f"'0-9'; got {value!r}"
        )
    return seeds


def pytest_configure(config):
    # Draw the random seed once, in the controlling process, and write it back
    # to the environment: pytest-xdist workers are spawned later and inherit
    # os.environ, so every worker collects the same parametrization (workers
    # that collected different ids would abort the run).
    value = os.environ.get(_SEED_ENV)
    if value is not None and value.strip().lower() == "any":
        os.environ[_SEED_ENV] = str(random.SystemRandom().randrange(10_000))


def pytest_report_header(config):
    seeds = _parse_seeds(os.environ.get(_SEED_ENV))
    if len(seeds) == 1:
        desc = str(seeds[0])
    else:
        desc = f"{seeds[0]}-{seeds[-1]}"
    return f"cymlp global_random_seed: {desc} (set {_SEED_ENV} to change)"


def pytest_generate_tests(metafunc):
    if "global_random_seed" in metafunc.fixturenames:
        seeds = _parse_seeds(os.environ.get(_SEED_ENV))
        metafunc.parametrize(
            "global_random_seed", seeds, ids=[f"seed={s}" for s in seeds]
        )


# Fixtures that modules opt into with
# ``pytestmark = pytest.mark.usefixtures("one_blas_thread", "quiet")``.
@pytest.fixture
def one_blas_thread():
    """Limit BLAS to one thread for the test.

    Bitwise reproducibility is promised with the BLAS threads fixed (their
    number changes the summation order), and tests that start threads of
    their own should not have BLAS's compete with them.
    """
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def quiet():
    """Ignore warnings for the test, e.g. the ConvergenceWarning of short fits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def teams_whatever_the_load():
    """Teams of threads for the test even when this machine is busy.

    The engine sends its calls to one thread after its teams were preempted
    by other programs (the busy-machine adaptation, csrc/team.h); tests that
    compare or exercise the parallel passes must really run them.
    """
    from cymlp._engine import _testing

    _testing._contention(adapt=False)
    yield
    _testing._contention(adapt=True)
