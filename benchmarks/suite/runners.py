"""The runners of the train, predict and latency workloads, and RUNNERS (all kinds).

A runner takes (spec, data, quick, repeats, others) and returns a list of
rows: ``rows.Row`` objects, or ``memory``'s tuples for the memory table.
``others`` (``libs.Others``) says which other libraries to time: the variants
of the PyTorch loop (``others.torch``: ``()`` for no torch column,
``("eager",)``, or ``("eager", "compiled")``, training rows only; the other
rows time torch eager whenever it is not empty), and whether to time the JAX
loop (``others.jax``, training rows only). Every row runs PyTorch and JAX
in worker processes (``suite/worker.py``), one per library and row, which
time their runs themselves: no torch or jax code runs in the suite's process.
"""

import contextlib
import time

import numpy as np

from common import threadpool_limits

from .floors import (
    EngineGather,
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
from .worker import data_file, open_worker


def busy_machine_decisions():
    """What cymlp's busy-machine adaptation decided (csrc/team.h) since the
    last call, which resets the counts: (teams found preempted, engine calls
    sent to one thread); None without cymlp. (Reading the second through
    its test hook takes one call off an episode in progress, if any.)"""
    if CYMLP_ERROR is not None:
        return None
    from cymlp._engine import _testing

    return _testing._contention(), _testing._contention_episode()[2]


def flop_limit(X, units, threads):
    """The FLOP limit of a training epoch on X, as interleaved runs.

    Parameters
    ----------
    X : ndarray
        The training data (its rows and dtype).
    units : sequence of int
        The layer widths, input to output.
    threads : int or None
        The engine's thread count (``engine_threads()``, the same count the
        row's chunk bound uses); None without cymlp.

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
    engine = GemmRate(X.dtype, "engine", threads) if threads else None
    scipy = GemmRate(X.dtype, "scipy")
    runs = {"limit": lambda: flops / (engine or scipy).rate(),
            "limit-scipy": lambda: flops / scipy.rate()}

    def describe(limit, limit_scipy):
        via = (f"cymlp's OpenBLAS on {plural(threads, 'thread')}, split as the engine "
               "splits products" if engine else "scipy's BLAS: cymlp not importable")
        rate = flops / min(limit)
        own = (engine or scipy).own_best
        own_note = ("" if own >= rate * (1 - 1e-9) else
                    f"; this row's own best {own / 1e9:.1f} GFLOP/s, slower: the run's best is kept")
        return (f"FLOP limit: {flops / 1e9:.2f} GFLOP/epoch at {rate / 1e9:.1f} "
                f"GFLOP/s (one 2000x2000 product, {via}; the fastest of the run{own_note}) = "
                f"{fmt_time(min(limit), 's/epoch')}; "
                f"through scipy's OpenBLAS (threads as set): "
                f"{flops / min(limit_scipy) / 1e9:.1f} GFLOP/s = "
                f"{fmt_time(min(limit_scipy), 's/epoch')}")
    return runs, describe


def keep_faster_torch(times, compile_error=None):
    """Keep the faster torch variant's times under ``times["torch"]``.

    Parameters
    ----------
    times : dict
        Library -> seconds per repeat, with the eager loop under "torch" and
        the compiled one under "torch-compiled"; changed in place: the
        faster one's times end under "torch", and "torch-compiled" goes.
    compile_error : str or None
        What the torch worker's warm-up returned (``torch_ref.warm_compiled``).

    Returns
    -------
    variant : {"eager", "compiled"} or None
        Which loop the torch column shows (None: torch was not timed).
    note : str or None
        A line for the row's notes: both times, or why there is no compiled one.
    """
    if "torch" not in times:
        return None, None
    if compile_error is not None:
        return "eager", f"torch.compile failed, torch column eager: {compile_error}"
    compiled = times.pop("torch-compiled", None)
    if compiled is None:
        return "eager", None
    eager = times["torch"]
    variant = "compiled" if min(compiled) < min(eager) else "eager"
    times["torch"] = compiled if variant == "compiled" else eager
    return variant, (f"torch: eager {fmt_time(min(eager), 's/epoch')}, torch.compile "
                     f"{fmt_time(min(compiled), 's/epoch')} (compiling not timed: done "
                     f"in the warm-up); the torch column is {variant}")


def start_workers(others, X, y, data_name, params, epochs):
    """The other libraries' loops for a training row, each in a worker process,
    loaded with X and warmed up (PyTorch: a short fit, then the compiled
    loop's untimed epoch; JAX: an untimed epoch on all of X, which compiles
    it). Returns (workers by library, runs by column name, notes)."""
    workers, runs, notes = {}, {}, []
    wanted = (["torch"] if others.torch else []) + (["jax"] if others.jax else [])
    for lib in wanted:
        w, answers, note = open_worker(lib, others.threads,
                                       ("load", data_file(data_name, X, y)),
                                       ("warm", params, others.torch))
        if w is None:
            notes.append(note)
            continue
        workers[lib] = w
        warm = answers[-1]
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
    threads = engine_threads()
    limit_runs, describe_limit = flop_limit(X, units, threads)
    n_params = count_params(units)
    step = (StepFloor(n_params, X.dtype, params.get("solver", "adam"), -(-len(X) // batch))
            if CYMLP_ERROR is None else None)
    chunks = (EngineProducts(units, len(X), batch, X.dtype, threads)
              if step is not None and threads else None)
    # a shuffled epoch copies every row of dense X once (the row pass's gather)
    gather = (EngineGather(X, batch, threads)
              if chunks is not None and params.get("shuffle", True)
              and not hasattr(X, "indptr") else None)
    # the same products on one thread: how far they scale themselves, beside
    # cymlp's own scaling (two threads share the memory's bandwidth)
    chunks_1t = (EngineProducts(units, len(X), batch, X.dtype, 1)
                 if chunks is not None and threads > 1 and spec.scaling_target else None)

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
    if chunks_1t is not None:
        runs["chunks-1t"] = chunks_1t.epoch
    if gather is not None:
        runs["gather"] = gather.epoch
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
    chunk_1t_times = times.pop("chunks-1t", None)
    gather_times = times.pop("gather", None)
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
        chunk_bound = [c + g + st / threads for c, g, st
                       in zip(chunk_times, gather_times or [0.0] * repeats, step_times)]
        gathered = (f"the gather of the shuffled rows ({fmt_time(min(gather_times), 's/epoch')}"
                    f", {min(gather_times) / min(limit_times):.2f}x), "
                    if gather is not None else "")
        notes.append(
            f"the engine's products alone, in the chunks that keep its bits, on "
            f"{plural(threads, 'thread')}: {fmt_time(min(chunk_times), 's/epoch')} = "
            f"{min(chunk_times) / min(limit_times):.2f}x the FLOP limit; with {gathered}"
            f"the optimizer steps{' split over the threads' if threads > 1 else ''}: "
            f"{min(chunk_bound) / min(limit_times):.2f}x, "
            f"the least cymlp / FLOP limit these chunks allow")
    scaling = min(one_thread_times) / min(times["cymlp"]) if one_thread_times else None
    products_scaling = (min(chunk_1t_times) / min(chunk_times)
                        if chunk_1t_times and chunk_times else None)
    if scaling is not None:
        target = (f" (target >={spec.scaling_target:g}x)" if spec.scaling_target else
                  " (no target: this row stays on one thread by design)")
        notes.append(f"cymlp thread scaling: one thread {fmt_time(min(one_thread_times), 's/epoch')}"
                     f", as set {fmt_time(min(times['cymlp']), 's/epoch')}: {scaling:.2f}x{target}")
    if products_scaling is not None:
        notes.append(f"the engine's chunked products alone: one thread "
                     f"{fmt_time(min(chunk_1t_times), 's/epoch')}, "
                     f"{plural(threads, 'thread')} {fmt_time(min(chunk_times), 's/epoch')}: "
                     f"they scale {products_scaling:.2f}x")
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
                limit=limit_times, chunk_bound=chunk_bound, gather=gather_times, notes=notes,
                sk_target=spec.sk_target,
                torch_variant=torch_variant, scaling=scaling,
                products_scaling=products_scaling)]


def torch_predictor(others, data_name, X, y, model):
    """A torch worker holding ``model``'s weights, for a prediction row.

    Parameters
    ----------
    others : libs.Others
        No worker when ``others.torch`` is empty; else its ``threads``.
    data_name : str
        The data set's name (``data_file``): X goes to the worker once.
    X, y : ndarray
        The rows the worker predicts (all of them, or its first ``rows``).
    model : fitted MLP
        Whose ``coefs_``, ``intercepts_``, hidden activations and
        ``out_activation_`` the worker's torch model takes
        (``torch_ref.torch_model``).

    Returns
    -------
    worker : worker.Worker or None
        None: no torch column (not wanted, or the worker failed).
    notes : list of str
        Why the worker failed, if it did.
    """
    if not others.torch:
        return None, []
    n_hidden = len(model.coefs_) - 1
    act = model.activation
    activations = [act] * n_hidden if isinstance(act, str) else list(act)
    worker, _, note = open_worker(
        "torch", others.threads, ("load", data_file(data_name, X, y)),
        ("set_model", list(model.coefs_), list(model.intercepts_), activations,
         model.out_activation_))
    return worker, [note] if note else []


def run_predict(spec, data, quick, repeats, others):
    X, y = data.get("mnist-f32")
    params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200)
    n_fit = min(len(X), 5000)
    models = {lib: fit_model(cls, X[:n_fit], y[:n_fit], params, 2)[1]
              for lib, cls in (("sklearn", SkMLP), ("cymlp", CyMLP))}
    worker, worker_notes = torch_predictor(others, "mnist-f32", X, y, models["cymlp"])
    out = {}

    def timed(lib):
        f = models[lib].predict_proba

        def run():
            start = time.perf_counter()
            out[lib] = f(X)
            return time.perf_counter() - start
        return run

    runs = {lib: timed(lib) for lib in ("sklearn", "cymlp")}
    if worker is not None:  # one call, timed in the worker
        runs["torch"] = lambda: worker.call("time_predict", 1)
    cy = models["cymlp"]
    with worker or contextlib.nullcontext():
        for run in runs.values():
            run()  # warm-up
        # The forward pass's products alone, each over all rows in one call (as
        # sklearn makes them): sklearn / that bounds the speedup of any
        # implementation doing these products on this BLAS.
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
             f"GFLOP/s); sk/floor bounds the speedup", *worker_notes]
    return [Row(spec.name, "s/call", times, spec, floor=floor_times, exact_floor=floor_times,
                notes=notes, sk_target=spec.sk_target)]


def latency_run(block, seconds):
    """A timed run of about ``seconds``: a block of back-to-back calls.

    Parameters
    ----------
    block : callable
        ``block(n)``: the seconds per call of ``n`` calls made back to back.
    seconds : float
        How long a run should take: the number of calls per block is chosen
        from a first measurement (after 20 warm-up calls), at least 20.

    Returns
    -------
    callable
        A run: the seconds per call of one such block.
    """
    block(20)  # warm-up
    n = max(20, int(seconds / block(50)))
    return lambda: block(n)


def run_latency(spec, data, quick, repeats, others):
    X, y = data.get("digits")
    params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200)
    models = {lib: fit_model(cls, X, y, params, 5)[1]
              for lib, cls in (("sklearn", SkMLP), ("cymlp", CyMLP))}
    worker, worker_notes = torch_predictor(others, "digits", X, y, models["cymlp"])
    x = np.ascontiguousarray(X[:1])
    block = 0.03 if quick else 0.1  # seconds per timed block of calls

    def calls(lib):
        f = models[lib].predict_proba

        def n_calls(n):
            start = time.perf_counter()
            for _ in range(n):
                f(x)
            return (time.perf_counter() - start) / n
        return n_calls

    blocks = {lib: calls(lib) for lib in ("sklearn", "cymlp")}
    if worker is not None:  # the block timed in the worker: the pipe's round trip is not
        blocks["torch"] = lambda n: worker.call("time_predict", n, 1)
    with worker or contextlib.nullcontext():
        times = interleaved({lib: latency_run(b, block) for lib, b in blocks.items()},
                            repeats)
    notes = [f"1x64 float64 row; mean per call over blocks of ~{block * 1e3:.0f} ms, "
             f"{repeats} blocks per library, interleaved", *worker_notes]
    return [Row(spec.name, "s/call", times, spec, notes=notes, sk_target=spec.sk_target)]


RUNNERS = {"train": run_train, "predict": run_predict, "latency": run_latency,
           "grid": run_grid, "memory": run_memory, "step": run_step}
