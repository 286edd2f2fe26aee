"""The benchmark suite's FLOP limit (benchmarks/suite/floors.py): its formula
against explicit counts, the engine's product that times its rate, and the
bound of the engine's chunks (``EngineProducts``, ``EngineGather``,
``Row.limit_bound``)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from suite.floors import (  # noqa: E402
    EngineGather, EngineProducts, GemmFloor, GemmRate, epoch_flops,
)
from suite.rows import Row  # noqa: E402
from suite.specs import SPECS  # noqa: E402


def _counted_epoch_flops(units, n_rows, batch):
    """Multiply-adds of an epoch of minibatch backprop, counted one by one
    through the loops of a naive dense product (2 flops each)."""
    macs = 0

    def matmul(m, k, n):  # an (m x k) @ (k x n) product, as triple loops
        nonlocal macs
        for _ in range(m):
            for _ in range(n):
                for _ in range(k):
                    macs += 1

    L = len(units) - 1
    for start in range(0, n_rows, batch):
        b = min(batch, n_rows - start)
        for i in range(L):  # forward: A[i+1] = A[i] @ W[i]
            matmul(b, units[i], units[i + 1])
        for i in range(L - 1, -1, -1):
            matmul(units[i], b, units[i + 1])  # weight gradient: A[i]^T @ D[i]
            if i > 0:  # delta to the hidden layer below: D[i] @ W[i]^T
                matmul(b, units[i + 1], units[i])
    return 2 * macs


def test_flop_formula_by_hand():
    # [3, 4, 2], 5 rows: per row forward 3*4 + 4*2 = 20, weight gradients 20,
    # the hidden layer's delta 4*2 = 8: 48 multiply-adds, 96 flops
    assert epoch_flops([3, 4, 2], 5) == 5 * 96


@pytest.mark.parametrize("units", [[3, 4, 2], [6, 5, 4, 3], [7, 1], [2, 9, 9, 9, 2]])
@pytest.mark.parametrize("n_rows, batch", [(10, 4), (9, 9), (5, 1)])
def test_flop_formula_counts_every_product(units, n_rows, batch):
    assert epoch_flops(units, n_rows) == _counted_epoch_flops(units, n_rows, batch)


def test_gemm_floor_times_the_counted_products():
    X = np.random.default_rng(0).standard_normal((23, 6))
    units = [6, 5, 4, 3]
    floor = GemmFloor(X, units, 8)
    assert floor.flops == epoch_flops(units, 23) == _counted_epoch_flops(units, 23, 8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_engine_product_hook(dtype, threads):
    # the product the FLOP limit's rate is timed on: right, on any thread count
    from cymlp._engine import _testing

    rng = np.random.default_rng(1)
    a = rng.standard_normal((37, 29)).astype(dtype)
    b = rng.standard_normal((29, 41)).astype(dtype)
    c = np.full((37, 41), np.nan, dtype)
    seconds = _testing._gemm_seconds(a, b, c, threads)
    assert seconds >= 0
    np.testing.assert_allclose(c, a @ b, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)
    with pytest.raises(ValueError):
        _testing._gemm_seconds(a, a, c, threads)


def test_gemm_rate_through_both_blas():
    for via in ("engine", "scipy"):
        rate = GemmRate(np.float64, via=via, threads=1, size=64)
        assert rate.rate() > 0
        np.testing.assert_allclose(rate.c, rate.a @ rate.b, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n_rows, batch", [(1000, 200), (1037, 200), (150, 200), (7, 2)])
def test_engine_products_share_out_the_epochs_minibatches(n_rows, batch, threads):
    # every minibatch of the epoch once, with the engine's sizes: full batches,
    # then the rest; the threads' shares of full batches differ by one at most
    chunks = EngineProducts([6, 5, 3], n_rows, batch, np.float32, threads)
    sizes = sorted(rows for work in chunks.work for rows, n in work for _ in range(n))
    expected = sorted(min(batch, n_rows - s) for s in range(0, n_rows, batch))
    assert sizes == expected
    full = [sum(n for rows, n in work if rows == batch) for work in chunks.work]
    if n_rows >= batch:
        assert max(full) - min(full) <= 1
    seconds = chunks.epoch()
    assert np.isfinite(seconds) and seconds > 0


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n_rows, batch", [(1000, 200), (1037, 200), (150, 200), (7, 2)])
def test_engine_gather_shares_out_every_row_once(n_rows, batch, threads):
    # every row of X once, in whole minibatches but the epoch's last
    X = np.arange(n_rows * 3, dtype=np.float64).reshape(n_rows, 3)
    gather = EngineGather(X, batch, threads)
    orders = [order for order, _ in gather.work]
    assert sorted(np.concatenate(orders).tolist()) == list(range(n_rows))
    assert all(len(order) % batch == 0 for order in orders[:-1])
    seconds = gather.epoch()
    assert np.isfinite(seconds) and seconds >= 0
    # each buffer holds the last minibatch of its thread's share
    for order, buf in gather.work:
        if len(order):
            last = len(order) - (len(order) - 1) // batch * batch
            np.testing.assert_array_equal(buf[:last], X[order[-last:]])


def test_limit_bound_is_the_chunks_over_the_limit():
    spec = next(s for s in SPECS if s.name == "mnist-f64")
    row = Row("mnist-f64", "s/epoch", {"sklearn": [3.0], "cymlp": [1.5, 1.4]}, spec,
              limit=[1.1, 1.0], chunk_bound=[1.3, 1.2])
    assert row.limit_bound() == pytest.approx(1.2)
    assert Row("x", "s/epoch", {"cymlp": [1.0]}, spec, limit=[1.0]).limit_bound() is None
    # the gather's part of the bound, where the row gathers
    assert row.gather_share() is None
    row.gather = [0.2, 0.1]
    assert row.gather_share() == pytest.approx(0.1)
    row.gather = [0.0, 0.0]  # shuffle=False: nothing gathered
    assert row.gather_share() is None


def test_missed_target_lines_name_the_bound_and_its_verdict():
    from suite.report import bound_clause

    why = "unreachable with the chunks that keep the bits"
    # a multiple of a limit: the bound must stay below the target to be reachable
    assert bound_clause("chunk bound", None, 1.4, "<", False, why) == ""
    assert bound_clause("chunk bound", 1.36, 1.4, "<", False, why) == "; chunk bound 1.36x"
    assert (bound_clause("chunk bound", 1.45, 1.4, "<", False, why)
            == "; chunk bound 1.45x > target: " + why)
    assert bound_clause("chunk bound", 1.45, 1.4, "<", True, why).endswith(
        "> target (--quick: single timings, too noisy to judge)")
    # a speedup: the bound must reach the target
    assert bound_clause("exact bound", 2.6, 2.5, ">", False, "x") == "; exact bound 2.60x"
    assert bound_clause("exact bound", 1.97, 2.5, ">", False, "x") == "; exact bound 1.97x < target: x"


def test_large_training_specs_carry_the_scaling_target():
    targets = {s.name: s.scaling_target for s in SPECS if s.kind == "train"}
    assert targets == {"digits-b32": None, "digits-b200": None, "cancer-sgd-b1": None,
                       "mnist-f64": 1.7, "mnist-f32": 1.7, "wide-f32": 1.7}


def test_gemm_rate_holds_every_row_to_the_runs_fastest_product():
    # a slow phase of the host slows a later row's products: its limit stays
    # the rate measured earlier in the run, for rows of the same kind only
    GemmRate._best.clear()
    fast = GemmRate(np.float64, via="scipy", size=64)
    fast._seconds = lambda: 1e-3
    assert fast.rate() == pytest.approx(fast.flops / 1e-3)
    slow = GemmRate(np.float64, via="scipy", size=64)
    slow._seconds = lambda: 2e-3
    assert slow.rate() == pytest.approx(fast.flops / 1e-3)
    assert slow.own_best == pytest.approx(slow.flops / 2e-3)
    other_kind = GemmRate(np.float32, via="scipy", size=64)
    other_kind._seconds = lambda: 2e-3
    assert other_kind.rate() == pytest.approx(other_kind.flops / 2e-3)
    GemmRate._best.clear()
