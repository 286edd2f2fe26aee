"""The runners of the train, predict and latency workloads, and RUNNERS (all kinds).

A runner takes (spec, data, quick, repeats, use_torch) and returns a list of
rows: ``rows.Row`` objects, or ``memory``'s tuples for the memory table.
``use_torch`` names the variants of the PyTorch loop to time: ``()`` for no
torch column, ``("eager",)``, or ``("eager", "compiled")`` (training rows
only; the other rows time torch eager whenever it is not empty).
"""

import time

import numpy as np

from common import threadpool_limits

from .floors import GemmFloor, StepFloor, count_params
from .grid import run_grid
from .libs import CYMLP_ERROR, CyMLP, SkMLP
from .measure import fit_model, interleaved, max_coef_diff
from .memory import run_memory
from .report import fmt_time, plural
from .rows import Row
from .steps import run_step
from .torch_ref import (
    keep_faster_torch,
    torch_fit,
    torch_model_from,
    torch_predict_proba,
    warm_compiled,
)


def busy_machine_decisions():
    """What cymlp's busy-machine adaptation decided (csrc/team.h) since the
    last call, which resets the counts: (teams found preempted, engine calls
    sent to one thread); None without cymlp. (Reading the second through
    its test hook takes one call off an episode in progress, if any.)"""
    if CYMLP_ERROR is not None:
        return None
    from cymlp._engine import _testing

    return _testing._contention(), _testing._contention_episode()[2]


def run_train(spec, data, quick, repeats, use_torch):
    X, y = data.get(spec.extra["data"])
    params = spec.extra["params"]
    epochs = spec.extra["epochs"][quick]
    n_classes = len(np.unique(y))
    units = [X.shape[1], *params["hidden_layer_sizes"], 1 if n_classes == 2 else n_classes]

    # Warm-up: one short fit each (first-call costs, page faults, thread start-up).
    w = min(len(X), 1000)
    for cls in (SkMLP, CyMLP):
        fit_model(cls, X[:w], y[:w], params, 1)
    if use_torch:
        torch_fit(X[:w], y[:w], params, 1)
    compile_error = None
    if "compiled" in use_torch:
        # compiles this workload's batch shapes: an untimed epoch on all of X
        compile_error = warm_compiled(X, y, params)
    batch = min(params["batch_size"], len(X))
    floor = GemmFloor(X, units, batch)
    floor.epoch()
    n_params = count_params(units)
    step = (StepFloor(n_params, X.dtype, params.get("solver", "adam"), -(-len(X) // batch))
            if CYMLP_ERROR is None else None)

    models = {}

    def timed(lib, cls):
        def run():
            t, models[lib] = fit_model(cls, X, y, params, epochs)
            return t
        return run

    runs = {"sklearn": timed("sklearn", SkMLP), "cymlp": timed("cymlp", CyMLP)}
    if use_torch:
        runs["torch"] = lambda: torch_fit(X, y, params, epochs)
    if "compiled" in use_torch and compile_error is None:
        runs["torch-compiled"] = lambda: torch_fit(X, y, params, epochs, compiled=True)
    if threadpool_limits is not None:
        # cymlp's own thread scaling: the same fit on one OpenMP thread
        def one_thread():
            with threadpool_limits(limits=1, user_api="openmp"):
                return fit_model(CyMLP, X, y, params, epochs)[0]
        runs["cymlp-1t"] = one_thread
    runs["floor"] = floor.epoch
    if step is not None:
        runs["step"] = step.epoch
    busy_machine_decisions()  # from here on
    times = interleaved(runs, repeats)
    busy = busy_machine_decisions()
    floor_times = times.pop("floor")
    step_times = times.pop("step", None)
    one_thread_times = times.pop("cymlp-1t", None)
    torch_variant, torch_note = keep_faster_torch(times, compile_error)
    sk, cy = models["sklearn"], models["cymlp"]
    notes = [f"{epochs} epochs x {plural(repeats, 'repeat')}; sklearn vs cymlp: max|dcoef| "
             f"{max_coef_diff(sk, cy):.1e}, final loss {sk.loss_:.6g} vs {cy.loss_:.6g}",
             f"{floor.flops / 1e9:.2f} GFLOP/epoch in {len(floor.calls)} GEMMs, floor "
             f"{floor.flops / 1e9 / min(floor_times):.1f} GFLOP/s (wrapper overhead "
             f"subtracted: {floor.overhead() * 1e3:.2f} ms/epoch)"]
    exact = [f + st for f, st in zip(floor_times, step_times)] if step_times else None
    if step_times:
        bound = min(times["sklearn"]) / min(exact)
        notes.append(f"optimizer steps alone ({step.solver}, {n_params} parameters, "
                     f"{step.n_batches} per epoch): {fmt_time(min(step_times), 's/epoch')}; "
                     f"sklearn / (GEMM floor + steps) = {bound:.2f}x")
    if one_thread_times:
        notes.append(f"cymlp thread scaling: one thread {fmt_time(min(one_thread_times), 's/epoch')}"
                     f", as set {fmt_time(min(times['cymlp']), 's/epoch')}: "
                     f"{min(one_thread_times) / min(times['cymlp']):.2f}x (target >=1.6x)")
    if busy is not None:
        notes.append(f"busy-machine adaptation during the timings: {plural(busy[0], 'team')} "
                     f"found preempted, {plural(busy[1], 'engine call')} sent to one thread")
    if torch_note:
        notes.append(torch_note)
    if sk.coefs_[0].dtype != cy.coefs_[0].dtype:
        notes.append(f"WARNING: sklearn trained in {sk.coefs_[0].dtype}, "
                     f"cymlp in {cy.coefs_[0].dtype}")
    return [Row(spec.name, "s/epoch", times, spec, floor=floor_times, exact_floor=exact,
                notes=notes, sk_target=spec.sk_target, torch_variant=torch_variant)]


def run_predict(spec, data, quick, repeats, use_torch):
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

    libs = ["sklearn", "cymlp"] + (["torch"] if use_torch else [])
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


def run_latency(spec, data, quick, repeats, use_torch):
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

    libs = ["sklearn", "cymlp"] + (["torch"] if use_torch else [])
    times = interleaved({lib: timed(lib) for lib in libs}, repeats)
    notes = [f"1x64 float64 row; mean per call over blocks of ~{block * 1e3:.0f} ms, "
             f"{repeats} blocks per library, interleaved"]
    return [Row(spec.name, "s/call", times, spec, notes=notes, sk_target=spec.sk_target)]



RUNNERS = {"train": run_train, "predict": run_predict, "latency": run_latency,
           "grid": run_grid, "memory": run_memory, "step": run_step}
