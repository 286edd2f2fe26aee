"""The runners of the train, predict and latency workloads, and RUNNERS (all kinds).

A runner takes (spec, data, quick, repeats, others) and returns a list of
rows: ``rows.Row`` objects, or ``memory``'s tuples for the memory table.
``others`` (``libs.Others``) says which other libraries to time: the variants
of the PyTorch loop (``others.torch``: ``()`` for no torch column,
``("eager",)``, or ``("eager", "compiled")``, training rows only; the other
rows time torch eager whenever it is not empty), and whether to time the JAX
loop (``others.jax``, training rows only). The training rows run PyTorch and
JAX in worker processes (``suite/worker.py``); the other rows run torch in
the suite's process.
"""

import contextlib
import time

import numpy as np

from common import threadpool_limits

from .floors import (
    EngineProducts,
    GemmFloor,
    GemmRate,
    StepFloor,
    count_params,
    engine_threads,
    epoch_flops,
)
from .grid import run_grid
from .libs import CYMLP_ERROR, CyMLP, SkMLP
from .measure import fit_model, interleaved, max_coef_diff
from .memory import run_memory
from .report import fmt_time, plural
from .rows import Row
from .steps import run_step
from .torch_ref import (
    keep_faster_torch,
    torch_model_from,
    torch_predict_proba,
)
from .worker import Worker, WorkerError, data_file


def busy_machine_decisions():
    """What cymlp's busy-machine adaptation decided (csrc/team.h) since the
    last call, which resets the counts: (teams found preempted, engine calls
    sent to one thread); None without cymlp. (Reading the second through
    its test hook takes one call off an episode in progress, if any.)"""
    if CYMLP_ERROR is not None:
        return None
    from cymlp._engine import _testing

    return _testing._contention(), _testing._contention_episode()[2]


def flop_limit(X, units):
    """The FLOP limit of a training epoch on X, as interleaved runs.

    Returns
    -------
    runs : dict
        "limit": a callable returning the epoch's FLOP limit measured now,
        ``epoch_flops / the rate of one 2000x2000 product`` through the
        engine's BLAS on the engine's thread count (through scipy's BLAS when
        cymlp is not importable); "limit-scipy": the same through scipy's BLAS
        at its own thread count, for comparison.
    describe : callable
        (limit times, scipy limit times) -> the row's note.
    """
    flops = epoch_flops(units, len(X))
    threads = engine_threads()
    engine = GemmRate(X.dtype, "engine", threads) if threads else None
    scipy = GemmRate(X.dtype, "scipy")
    runs = {"limit": lambda: flops / (engine or scipy).rate(),
            "limit-scipy": lambda: flops / scipy.rate()}

    def describe(limit, limit_scipy):
        via = (f"cymlp's OpenBLAS on {plural(threads, 'thread')}, split as the engine "
               "splits products" if engine else "scipy's BLAS: cymlp not importable")
        return (f"FLOP limit: {flops / 1e9:.2f} GFLOP/epoch at {flops / min(limit) / 1e9:.1f} "
                f"GFLOP/s (one 2000x2000 product, {via}) = {fmt_time(min(limit), 's/epoch')}; "
                f"through scipy's OpenBLAS (threads as set): "
                f"{flops / min(limit_scipy) / 1e9:.1f} GFLOP/s = "
                f"{fmt_time(min(limit_scipy), 's/epoch')}")
    return runs, describe


def start_workers(others, X, y, data_name, params, epochs):
    """The other libraries' loops for a training row, each in a worker process,
    loaded with X and warmed up (PyTorch: a short fit, then the compiled
    loop's untimed epoch; JAX: an untimed epoch on all of X, which compiles
    it). Returns (workers by library, runs by column name, notes)."""
    workers, runs, notes = {}, {}, []
    wanted = (["torch"] if others.torch else []) + (["jax"] if others.jax else [])
    for lib in wanted:
        try:
            w = Worker(lib, others.threads)
            w.call("load", data_file(data_name, X, y))
            warm = w.call("warm", params, others.torch)
        except WorkerError as exc:
            notes.append(f"{lib} worker failed, no {lib} column: {exc}")
            continue
        workers[lib] = w
        if lib == "torch":
            runs["torch"] = lambda w=w: w.call("fit", params, epochs, "eager")
            if "compiled" in others.torch:
                workers["torch-compile-error"] = warm
                if warm is None:
                    runs["torch-compiled"] = lambda w=w: w.call("fit", params, epochs,
                                                                "compiled")
        else:
            notes.append(f"jax {w.info['version']} ({w.info['backend']}): whole-epoch "
                         f"jax.jit over lax.scan, compiled in {warm:.1f} s (not timed)")
            runs["jax"] = lambda w=w: w.call("fit", params, epochs)
    return workers, runs, notes


def run_train(spec, data, quick, repeats, others):
    X, y = data.get(spec.extra["data"])
    params = spec.extra["params"]
    epochs = spec.extra["epochs"][quick]
    n_classes = len(np.unique(y))
    units = [X.shape[1], *params["hidden_layer_sizes"], 1 if n_classes == 2 else n_classes]

    # Warm-up: one short fit each (first-call costs, page faults, thread start-up).
    w = min(len(X), 1000)
    for cls in (SkMLP, CyMLP):
        fit_model(cls, X[:w], y[:w], params, 1)
    workers, other_runs, worker_notes = start_workers(others, X, y, spec.extra["data"],
                                                      params, epochs)
    compile_error = workers.pop("torch-compile-error", None)
    batch = min(params["batch_size"], len(X))
    floor = GemmFloor(X, units, batch)
    floor.epoch()
    limit_runs, describe_limit = flop_limit(X, units)
    n_params = count_params(units)
    step = (StepFloor(n_params, X.dtype, params.get("solver", "adam"), -(-len(X) // batch))
            if CYMLP_ERROR is None else None)
    threads = engine_threads()
    chunks = (EngineProducts(units, len(X), batch, X.dtype, threads)
              if step is not None and threads else None)

    models = {}

    def timed(lib, cls):
        def run():
            t, models[lib] = fit_model(cls, X, y, params, epochs)
            return t
        return run

    runs = {"sklearn": timed("sklearn", SkMLP), "cymlp": timed("cymlp", CyMLP)}
    runs.update(other_runs)  # the workers' fits, of the same epochs
    if threadpool_limits is not None:
        # cymlp's own thread scaling: the same fit on one OpenMP thread
        def one_thread():
            with threadpool_limits(limits=1, user_api="openmp"):
                return fit_model(CyMLP, X, y, params, epochs)[0]
        runs["cymlp-1t"] = one_thread
    runs["floor"] = floor.epoch
    runs.update(limit_runs)
    if step is not None:
        runs["step"] = step.epoch
    if chunks is not None:
        runs["chunks"] = chunks.epoch
    busy_machine_decisions()  # from here on
    with contextlib.ExitStack() as stack:
        for wk in workers.values():
            stack.enter_context(wk)
        times = interleaved(runs, repeats)
    busy = busy_machine_decisions()
    floor_times = times.pop("floor")
    limit_times, limit_scipy_times = times.pop("limit"), times.pop("limit-scipy")
    step_times = times.pop("step", None)
    chunk_times = times.pop("chunks", None)
    one_thread_times = times.pop("cymlp-1t", None)
    torch_variant, torch_note = keep_faster_torch(times, compile_error)
    sk, cy = models["sklearn"], models["cymlp"]
    if abs(floor.flops - epoch_flops(units, len(X))) > 1e-9 * floor.flops:
        raise RuntimeError("the GEMM floor's products and epoch_flops disagree")
    notes = [f"{epochs} epochs x {plural(repeats, 'repeat')}; sklearn vs cymlp: max|dcoef| "
             f"{max_coef_diff(sk, cy):.1e}, final loss {sk.loss_:.6g} vs {cy.loss_:.6g}",
             f"{floor.flops / 1e9:.2f} GFLOP/epoch in {len(floor.calls)} GEMMs, floor "
             f"{floor.flops / 1e9 / min(floor_times):.1f} GFLOP/s (scipy's BLAS, wrapper "
             f"overhead subtracted: {floor.overhead() * 1e3:.2f} ms/epoch)",
             describe_limit(limit_times, limit_scipy_times)]
    exact = [f + st for f, st in zip(floor_times, step_times)] if step_times else None
    if step_times:
        bound = min(times["sklearn"]) / min(exact)
        notes.append(f"optimizer steps alone ({step.solver}, {n_params} parameters, "
                     f"{step.n_batches} per epoch): {fmt_time(min(step_times), 's/epoch')}; "
                     f"sklearn / (GEMM floor + steps) = {bound:.2f}x")
    chunk_bound = None
    if chunk_times and step_times:
        # the steps as if split over the threads without loss: a lower bound
        chunk_bound = [c + st / threads for c, st in zip(chunk_times, step_times)]
        notes.append(
            f"the engine's products alone, in the chunks that keep its bits, on "
            f"{plural(threads, 'thread')}: {fmt_time(min(chunk_times), 's/epoch')} = "
            f"{min(chunk_times) / min(limit_times):.2f}x the FLOP limit; with the optimizer "
            f"steps split over the threads: {min(chunk_bound) / min(limit_times):.2f}x, "
            f"the least cymlp / FLOP limit these chunks allow")
    if one_thread_times:
        notes.append(f"cymlp thread scaling: one thread {fmt_time(min(one_thread_times), 's/epoch')}"
                     f", as set {fmt_time(min(times['cymlp']), 's/epoch')}: "
                     f"{min(one_thread_times) / min(times['cymlp']):.2f}x (target >=1.6x)")
    if busy is not None:
        notes.append(f"busy-machine adaptation during the timings: {plural(busy[0], 'team')} "
                     f"found preempted, {plural(busy[1], 'engine call')} sent to one thread")
    notes += worker_notes
    if torch_note:
        notes.append(torch_note)
    if sk.coefs_[0].dtype != cy.coefs_[0].dtype:
        notes.append(f"WARNING: sklearn trained in {sk.coefs_[0].dtype}, "
                     f"cymlp in {cy.coefs_[0].dtype}")
    return [Row(spec.name, "s/epoch", times, spec, floor=floor_times, exact_floor=exact,
                limit=limit_times, chunk_bound=chunk_bound, notes=notes, sk_target=spec.sk_target,
                torch_variant=torch_variant,
                scaling=min(one_thread_times) / min(times["cymlp"]) if one_thread_times
                else None)]


def run_predict(spec, data, quick, repeats, others):
    X, y = data.get("mnist-f32")
    params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200)
    n_fit = min(len(X), 5000)
    models = {lib: fit_model(cls, X[:n_fit], y[:n_fit], params, 2)[1]
              for lib, cls in (("sklearn", SkMLP), ("cymlp", CyMLP))}
    out = {}

    def timed(lib):
        if lib == "torch":
            tm = torch_model_from(models["cymlp"])
            f = lambda: torch_predict_proba(tm, X)  # noqa: E731
        else:
            f = lambda: models[lib].predict_proba(X)  # noqa: E731

        def run():
            start = time.perf_counter()
            out[lib] = f()
            return time.perf_counter() - start
        run()  # warm-up
        return run

    libs = ["sklearn", "cymlp"] + (["torch"] if others.torch else [])
    runs = {lib: timed(lib) for lib in libs}
    # The forward pass's products alone, each over all rows in one call (as
    # sklearn makes them): sklearn / that bounds the speedup of any
    # implementation doing these products on this BLAS.
    cy = models["cymlp"]
    floor = GemmFloor(X, [X.shape[1], *cy.hidden_layer_sizes, cy.n_outputs_], len(X),
                      forward_only=True)
    runs["floor"] = floor.epoch
    times = interleaved(runs, repeats)
    floor_times = times.pop("floor")
    diff = float(np.max(np.abs(out["sklearn"] - out["cymlp"])))
    notes = [f"{len(X)} rows x {plural(repeats, 'repeat')}, models fitted 2 epochs on "
             f"{n_fit} rows; max|dproba| sklearn vs cymlp {diff:.1e}; proba dtype "
             f"{out['cymlp'].dtype}",
             f"GEMM floor: the forward products over all rows "
             f"({floor.flops / 1e9:.2f} GFLOP, {floor.flops / min(floor_times) / 1e9:.1f} "
             f"GFLOP/s); sk/floor bounds the speedup"]
    return [Row(spec.name, "s/call", times, spec, floor=floor_times, exact_floor=floor_times,
                notes=notes, sk_target=spec.sk_target)]


def run_latency(spec, data, quick, repeats, others):
    X, y = data.get("digits")
    params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200)
    models = {lib: fit_model(cls, X, y, params, 5)[1]
              for lib, cls in (("sklearn", SkMLP), ("cymlp", CyMLP))}
    x = np.ascontiguousarray(X[:1])
    block = 0.03 if quick else 0.1  # seconds per timed block of calls

    def timed(lib):
        if lib == "torch":
            tm = torch_model_from(models["cymlp"])
            f = lambda: torch_predict_proba(tm, x)  # noqa: E731
        else:
            f = models[lib].predict_proba
            f = (lambda f: lambda: f(x))(f)
        for _ in range(20):
            f()
        start = time.perf_counter()
        for _ in range(50):
            f()
        n = max(20, int(block / ((time.perf_counter() - start) / 50)))

        def run():
            start = time.perf_counter()
            for _ in range(n):
                f()
            return (time.perf_counter() - start) / n
        return run

    libs = ["sklearn", "cymlp"] + (["torch"] if others.torch else [])
    times = interleaved({lib: timed(lib) for lib in libs}, repeats)
    notes = [f"1x64 float64 row; mean per call over blocks of ~{block * 1e3:.0f} ms, "
             f"{repeats} blocks per library, interleaved"]
    return [Row(spec.name, "s/call", times, spec, notes=notes, sk_target=spec.sk_target)]



RUNNERS = {"train": run_train, "predict": run_predict, "latency": run_latency,
           "grid": run_grid, "memory": run_memory, "step": run_step}
