"""The step-* rows: one optimizer step alone, in nanoseconds per parameter.

For one optimizer and dtype, on the parameter count of two networks of the
training rows (the (100,) network on MNIST-shaped data and on digits), this
times a minibatch's optimizer step over every parameter, and nothing else:

* cymlp: its compiled step (``StepFloor``: the C loop the engine runs, with
  the Python call overhead measured on size-1 buffers and subtracted, since
  the engine calls it from C);
* scikit-learn: its own step, ``update_params`` of its optimizer
  (``_get_updates`` and the in-place add), over lists of arrays of the
  network's shapes. Its Python overhead is included: sklearn pays it on every
  minibatch. Its L2 term and the division by the batch size, which cymlp's
  step also does, happen in sklearn's ``_backprop`` and are not counted here;
* torch, when installed: ``opt.step()`` of the PyTorch loop's optimizer
  (fused Adam; SGD with Nesterov momentum; fused AdamW) over tensors of
  those shapes, in a worker process (``suite/worker.py``, one per workload),
  which times the same steps itself and answers with the seconds.

scikit-learn has no AdamW: in the step-adamw rows its Adam step stands in,
so their ratio says what the decoupled decay costs over sklearn's Adam.

Clipping by the global norm (``max_grad_norm``) costs a pass of its own over
the gradient before the step: the ``-clip`` rows of Adam and AdamW time the
norm and the clipped step together (torch: ``clip_grad_norm_`` and the
step), beside the same sklearn column, so that their cymlp time over the
plain row's is the option's cost per step. The learning-rate schedules cost
nothing per step (one rate per epoch) and label smoothing smooths the
targets once per fit.

Each time is divided by steps x parameters. The rows have no target: the
Adam step is the square root and division per parameter that bound every
exact implementation (README, "The optimizer steps").

For Adam, on a CPU with AVX-512 or AVX2, the rows ``-divider``, ``-fma``,
``-hybrid``, ``-fma-avx2`` and ``-hybrid-avx2`` (those this CPU runs) time
cymlp's step with each way to its quotient forced (the same bits; the plain row takes the one chosen when cymlp was loaded,
``cymlp._engine._testing._adam_step_path()``), in the same interleaved repeats.
"""

import time

import numpy as np
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from .floors import StepFloor, count_params, layer_shapes
from .libs import CYMLP_ERROR
from .measure import interleaved
from .report import plural
from .rows import Row
from .worker import open_worker

# (row suffix, layer widths): the (100,) networks of mnist-* and digits-*
NETWORKS = (("mnist", (784, 100, 10)), ("digits", (64, 100, 10)))
# parameter updates per timed run (full, quick): 20-300 ms for each library
PARAM_STEPS = (16_000_000, 4_000_000)
# StepFloor's step: L2 alpha 1e-4 on a batch of 32 rows, learning rate 1e-3
ALPHA, BATCH = 1e-4, 32
# the solvers whose rows have a -clip twin, and its max_grad_norm
CLIPPED, MAX_GRAD_NORM = ("adam", "adamw"), 0.1


def _split(flat, shapes):
    """Views of the 1-d array ``flat`` cut into arrays of ``shapes``, in order.

    Parameters
    ----------
    flat : ndarray of shape (n,)
    shapes : list of tuple
        Whose sizes add up to at most ``n``.

    Returns
    -------
    list of ndarray
    """
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


def sklearn_steps(floor, shapes):
    """A timed run of ``floor.n_batches`` of scikit-learn's optimizer steps.

    Parameters
    ----------
    floor : StepFloor
        cymlp's timing of the same steps: the parameters start from its
        values and take its gradient, so every library does the same
        arithmetic, with its solver and number of steps.
    shapes : list of tuple
        The network's parameter shapes (``layer_shapes``).

    Returns
    -------
    callable
        A fresh run of the steps on every call, returning its seconds.
    """
    grads = _split(floor.grad, shapes)

    def run():
        params = _split(floor.params0.copy(), shapes)
        if floor.solver in ("adam", "adamw"):  # sklearn has no AdamW
            opt = AdamOptimizer(params, learning_rate_init=1e-3)
        else:
            opt = SGDOptimizer(params, learning_rate_init=1e-3, momentum=0.9,
                               nesterov=True)
        start = time.perf_counter()
        for _ in range(floor.n_batches):
            opt.update_params(params, grads)
        return time.perf_counter() - start
    return run


def torch_steps(worker, floor, shapes):
    """The same steps through the PyTorch loop's optimizer, in ``worker``.

    Parameters
    ----------
    worker : worker.Worker
        A torch worker: it is handed the steps (``TorchLoop.set_steps``) now.
    floor, shapes
        As for ``sklearn_steps``: the same start values, gradient, solver,
        number of steps and, for a ``-clip`` row, ``max_grad_norm``.

    Returns
    -------
    callable
        Asks the worker for a fresh timed run of the steps; returns its seconds.
    """
    worker.call("set_steps", floor.solver, _split(floor.params0, shapes),
                _split(floor.grad, shapes), floor.n_batches, ALPHA / BATCH,
                floor.max_grad_norm)
    return lambda: worker.call("steps")


def run_step(spec, data, quick, repeats, others):
    """Time one optimizer step alone per parameter: a row per network of ``NETWORKS``.

    Parameters
    ----------
    spec : Spec
        A step-* workload: ``spec.extra`` names the solver and dtype.
    data : Data
        Unused: the steps take random values, not a data set.
    quick : bool
        Fewer steps per timed run (``PARAM_STEPS``).
    repeats : int
        Interleaved repeats per library.
    others : libs.Others
        The other libraries: no torch column when ``others.torch`` is empty;
        else torch steps in one worker process for all of the workload's
        rows, on ``others.threads`` threads.

    Returns
    -------
    list of Row
        Times in seconds per parameter and step (unit "ns/param").
    """
    if CYMLP_ERROR is not None:  # the step is cymlp's compiled loop: nothing to time
        print(f"  {spec.name}: skipped, cymlp is not importable")
        return []
    worker, _, note = (open_worker("torch", others.threads) if others.torch
                       else (None, [], None))
    try:
        rows = [row for net, units in NETWORKS
                for row in _network_rows(spec, net, units, quick, repeats, worker)]
    finally:
        if worker is not None:
            worker.close()
    if note:
        rows[0].notes.append(note)
    return rows


def _network_rows(spec, net, units, quick, repeats, worker):
    """``run_step``'s rows for one network of ``NETWORKS``: the plain step,
    its ``-clip`` twin, and one per way to Adam's quotient.

    ``worker``: the torch worker, or None for no torch column.
    """
    solver, dtype = spec.extra["solver"], spec.extra["dtype"]
    shapes = layer_shapes(units)
    n_params = count_params(units)
    n_steps = max(10, PARAM_STEPS[quick] // n_params)
    floor = StepFloor(n_params, dtype, solver, n_steps)
    runs = {"sklearn": sklearn_steps(floor, shapes), "cymlp": floor.epoch}
    if worker is not None:
        runs["torch"] = torch_steps(worker, floor, shapes)
    for path in quotient_paths(solver):
        runs[path] = StepFloor(n_params, dtype, solver, n_steps, path=path).epoch
    for run in runs.values():
        run()  # warm-up: first-call costs, page faults
    times = interleaved(runs, repeats)
    per_param = {lib: [t / (n_steps * n_params) for t in ts]
                 for lib, ts in times.items()}
    shape_text = "-".join(map(str, units))
    notes = [f"{shape_text} network, {n_steps} steps x {plural(repeats, 'repeat')}; "
             f"cymlp's call overhead subtracted: "
             f"{floor.overhead() / n_steps * 1e6:.2f} us per step"]
    paths = {path: per_param.pop(path) for path in quotient_paths(solver)}
    rows = [Row(f"{spec.name}-{net}", "ns/param", per_param, spec, notes=notes,
                params=n_params)]
    if solver in CLIPPED:
        rows.append(_clip_row(spec, net, units, n_steps, repeats, worker,
                              per_param["sklearn"]))
    for path, times in paths.items():  # the sklearn column repeated, for its ratio
        rows.append(Row(f"{spec.name}-{net}-{path}", "ns/param",
                        {"sklearn": per_param["sklearn"], "cymlp": times}, spec,
                        notes=[f"Adam's quotient by the {path} path, forced"],
                        params=n_params))
    return rows


def _clip_row(spec, net, units, n_steps, repeats, worker, sklearn_times):
    """The ``-clip`` row: the step after clipping by the global norm.

    The gradients (random, of norm about 0.1 x sqrt(parameters) / 32 over
    the batch of 32) exceed ``MAX_GRAD_NORM``, so every step is really scaled. The sklearn column is
    the plain row's, repeated for the ratio (sklearn cannot clip).
    """
    solver, dtype = spec.extra["solver"], spec.extra["dtype"]
    n_params = count_params(units)
    floor = StepFloor(n_params, dtype, solver, n_steps, max_grad_norm=MAX_GRAD_NORM)
    runs = {"cymlp": floor.epoch}
    if worker is not None:
        runs["torch"] = torch_steps(worker, floor, layer_shapes(units))
    for run in runs.values():
        run()
    times = interleaved(runs, repeats)
    per_param = {lib: [t / (n_steps * n_params) for t in ts] for lib, ts in times.items()}
    per_param["sklearn"] = sklearn_times
    return Row(f"{spec.name}-{net}-clip", "ns/param", per_param, spec,
               notes=[f"max_grad_norm={MAX_GRAD_NORM}: the gradient's norm, then the "
                      "scaled step (sklearn's column: its plain step)"],
               params=n_params)


def quotient_paths(solver):
    """The ways to Adam's quotient that this CPU runs, each timed in a row of its own.

    Parameters
    ----------
    solver : str

    Returns
    -------
    tuple of str
        Empty for SGD, or where cymlp has only the divider (neither AVX-512
        nor AVX2); else "divider" and each of "fma", "hybrid" (AVX-512),
        "fma-avx2", "hybrid-avx2" that this CPU runs.
    """
    from cymlp import _engine
    from cymlp._engine import _testing

    if solver != "adam":
        return ()
    paths = []
    for path in ("fma", "hybrid", "fma-avx2", "hybrid-avx2"):
        try:
            _testing._kernel_adam_quotient(np.ones(1), np.ones(1), 1e-8, path)
        except ValueError:  # its instruction set is missing
            continue
        paths.append(path)
    return ("divider", *paths) if paths else ()
