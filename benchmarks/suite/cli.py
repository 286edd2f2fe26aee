"""The command line of the benchmark suite (``python benchmarks/run.py``)."""

import argparse
import time

from common import blas_threads, load_average, threadpool_limits

from .libs import HAVE_JAX, HAVE_TORCH, Others
from .report import list_workloads, print_header, print_results, write_json
from .runners import RUNNERS
from .specs import (
    MNIST_ROWS,
    SPEC_BY_NAME,
    SPECS,
    Data,
    default_repeats,
    workload_names,
)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="cymlp benchmark suite: every workload, cymlp vs sklearn (vs PyTorch).")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (under a minute): fewer epochs and repeats, "
                             f"{MNIST_ROWS[1]}-row MNIST-shaped data")
    parser.add_argument("--only", action="append", metavar="NAMES",
                        help="run only these workloads (comma-separated, repeatable; "
                             "'step' runs every step-* workload); see --list")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats per library and workload (default: 5 digits/cancer, "
                             "3 MNIST-shaped and grid, 7 predict; 1-3 with --quick)")
    parser.add_argument("--blas-threads", type=int, default=None, metavar="N",
                        help="limit every BLAS to N threads (threadpoolctl) and torch to N "
                             "(torch.set_num_threads); cymlp's engine follows a BLAS limit "
                             "below the core count, as scikit-learn's MLP does; default: "
                             "leave as set")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="limit every library to N threads: BLAS and OpenMP "
                             "(threadpoolctl, cymlp's engine included) and torch")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch loop even when torch is installed")
    parser.add_argument("--no-jax", action="store_true",
                        help="skip the JAX loop even when jax is installed")
    parser.add_argument("--no-compile", action="store_true",
                        help="time the PyTorch training loop eager only, without its "
                             "torch.compile variant (which compiles for tens of seconds "
                             "per batch shape on the first run)")
    parser.add_argument("--json", metavar="PATH",
                        help="also write the rows as JSON (the docs gallery plots "
                             "benchmarks/results.json)")
    args = parser.parse_args(argv)

    if args.list:
        list_workloads(args.quick)
        return
    names = [s.name for s in SPECS]
    if args.only:
        names = [name for arg in args.only for n in arg.split(",") if n.strip()
                 for name in workload_names(n.strip())]
        names = list(dict.fromkeys(names))  # once each, in the order given
        unknown = [n for n in names if n not in SPEC_BY_NAME]
        if unknown:
            parser.error(f"unknown workload(s) {unknown}; choose from "
                         f"{[s.name for s in SPECS]}")
    use_torch = ()  # the variants of the PyTorch loop to time (see runners)
    if HAVE_TORCH and not args.no_torch:
        use_torch = ("eager",) if args.no_compile else ("eager", "compiled")

    limiter = None
    if args.blas_threads is not None:
        if threadpool_limits is None:
            parser.error("--blas-threads needs threadpoolctl")
        limiter = threadpool_limits(limits=args.blas_threads, user_api="blas")
    if args.threads is not None:
        if threadpool_limits is None:
            parser.error("--threads needs threadpoolctl")
        limiter = threadpool_limits(limits=args.threads)
        args.blas_threads = args.threads
    threads = blas_threads("scipy")
    # torch's workers call torch.set_num_threads(others.threads)
    others = Others(torch=use_torch, jax=HAVE_JAX and not args.no_jax,
                    threads=args.blas_threads or threads or 1)

    print_header(args, threads, others)
    data = Data(args.quick)
    rows, mem_rows = [], []
    total = time.perf_counter()
    for name in names:
        spec = SPEC_BY_NAME[name]
        repeats = args.repeats or default_repeats(spec, args.quick)
        t0 = time.perf_counter()
        out = RUNNERS[spec.kind](spec, data, args.quick, repeats, others)
        for r in out:
            (mem_rows if isinstance(r, tuple) else rows).append(r)
        desc = spec.desc.format(mnist=data.n_mnist, wide=data.n_wide)
        print(f"  {name:<14} {time.perf_counter() - t0:6.1f} s  {desc}", flush=True)
    if limiter is not None:
        limiter.restore_original_limits()

    print_results(rows, mem_rows, quick=args.quick)
    if args.json:
        write_json(args.json, rows, threads=args.blas_threads or threads)
    load = load_average()
    print(f"\ntotal wall time {time.perf_counter() - total:.1f} s"
          + (f"; load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
             if load else ""))

