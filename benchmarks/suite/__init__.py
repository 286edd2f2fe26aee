"""The benchmark suite behind ``benchmarks/run.py``, one module per concern.

``specs``      the workloads, their targets and the data they run on
``libs``       the libraries compared (cymlp, scikit-learn, optional torch)
``measure``    interleaved repeats and fixed-epoch fits
``floors``     the GEMM floor and the optimizer steps alone (GemmFloor, StepFloor)
``torch_ref``  the PyTorch reference loop (eager fused Adam, and torch.compile)
``rows``       one result row: times per library, ratios, bounds
``runners``    the train, predict and latency runners; RUNNERS, one per workload kind
``grid``       the grid-search runner (serial and threaded GridSearchCV)
``memory``     the peak-memory runner and its two measures
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
  alone, through scipy's BLAS (the one cymlp calls), on the same shapes and
  dtype, without copies; cymlp's time is reported as a multiple of it.
* Peak memory of fit (tracemalloc peak, and the growth of the resident set
  size) is reported next to X.nbytes.

Absolute times mean little on a shared machine: read the ratios.

The modules import ``common`` (benchmarks/common.py) as a top-level module:
run.py's directory is on ``sys.path`` when it runs as a script.
"""
