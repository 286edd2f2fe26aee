"""The benchmark suite behind ``benchmarks/run.py``, one module per concern.

``specs``      the workloads, their targets and the data they run on
``libs``       the libraries compared (cymlp, scikit-learn, optional torch and jax)
``measure``    interleaved repeats and fixed-epoch fits
``floors``     the GEMM floor, the optimizer steps alone, the FLOP limit
               (GemmFloor, StepFloor, epoch_flops, GemmRate)
``torch_ref``  the PyTorch reference loop (eager fused Adam, and torch.compile),
               and torch's side of the prediction, step and memory rows
``jax_ref``    the JAX reference loop (one jax.jit per epoch over lax.scan)
``worker``     the worker processes every torch and jax call runs in
``rows``       one result row: times per library, ratios, bounds
``runners``    the train, predict and latency runners; RUNNERS, one per workload kind
``grid``       the grid-search runner (serial and threaded GridSearchCV)
``memory``     the peak-memory runner and its two measures
``rss``        the peak RSS growth of a call (the suite's process, torch's worker)
``steps``      the optimizer step alone, ns per parameter (the step-* rows)
``report``     the header, the table, the notes, --list and the JSON file
``cli``        the command line (run.py calls ``cli.main``)

Method (see benchmarks/README.md for the long form):

* Every timed run of every library (and of the GEMM floor) is interleaved with
  the others, and the order rotates on every repeat, so background load falls
  on all alike. Each time is the minimum over the repeats; the "(med)" column is
  the median of the per-repeat ratios, a cross-check against noise.
* Training rows report seconds per epoch = fit time / n_iter_ (every fit runs
  exactly its epochs: tol=0, n_iter_no_change > max_iter).
* The GEMM floor of a training row is the time of that epoch's matrix products
  alone, through scipy's BLAS (a build of the kind cymlp calls, not its own
  copy), on the same shapes and dtype, without copies; cymlp's time is
  reported as a multiple of it.
* The FLOP limit of a training row is the epoch's flops
  (``floors.epoch_flops``) at the rate of one 2000x2000 product through
  cymlp's own BLAS on the engine's threads, measured interleaved; cymlp's
  time over it is the large rows' yardstick (issue #24).
* PyTorch and JAX run in worker processes (every row that times them), so
  that their threads are not in the process that times cymlp and
  scikit-learn, which does not import them.
* Peak memory of fit (tracemalloc peak, and the growth of the resident set
  size) is reported next to X.nbytes.

Absolute times mean little on a shared machine: read the ratios.

The modules import ``common`` (benchmarks/common.py) as a top-level module:
run.py's directory is on ``sys.path`` when it runs as a script.
"""
