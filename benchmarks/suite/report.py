"""The output: the header, the results table with its notes, --list and --json."""

import json
import os

from common import blas_report, load_average, machine_lines, versions_line

from .libs import CYMLP_ERROR, HAVE_TORCH, cymlp, torch_version
from .specs import MNIST_ROWS, SPECS, WIDE_ROWS
from .worker import usable_cpus


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def fmt_time(seconds, unit):
    if seconds is None:
        return "-"
    if unit == "ns/param":  # the step-* rows: seconds per parameter and step
        return f"{seconds * 1e9:.3g} ns"
    if unit == "s/search":
        return f"{seconds:.3g} s"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} us"
    if seconds < 1:
        return f"{seconds * 1e3:.4g} ms"
    return f"{seconds:.4g} s"


def verdict(value, target, at_least=True):
    if value is None or target is None:
        return "-"
    ok = value >= target if at_least else value <= target
    return "pass" if ok else "MISS"


def table(header, body):
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] +
                     [line(r) for r in body])


def print_notes(rows, width):
    """Each row's notes, one a line, the row's name (``width`` wide) on the first."""
    for r in rows:
        for i, n in enumerate(r.notes):
            print(f"  {r.name if i == 0 else '':<{width}} {n}")


def print_step_table(rows):
    """The step-* rows, in a table of their own: ns per parameter and step."""
    print()
    print("Optimizer step alone: nanoseconds per parameter and minibatch step "
          "(minimum over the repeats)")
    body = [[r.name, f"{r.params:,}", fmt_time(r.best("sklearn"), r.unit),
             fmt_time(r.best("cymlp"), r.unit), fmt_time(r.best("torch"), r.unit),
             f"{r.ratio():.2f}x", f"{r.ratio_med():.2f}x",
             f"{r.torch_ratio():.2f}x" if r.torch_ratio() else "-"] for r in rows]
    print(table(["workload", "parameters", "sklearn", "cymlp", "torch", "sklearn/cy",
                 "(med)", "torch/cy"], body))
    print("cymlp: the engine's compiled step, call overhead subtracted. sklearn: its "
          "optimizer's update_params, Python overhead included")
    print("(its L2 term and division by the batch size, done in _backprop, not counted). "
          "torch: opt.step(), fused Adam / fused SGD.")
    print_notes(rows, 20)


def bound_clause(name, bound, target, better, quick, why):
    """The clause a missed target's line gives its measured bound: empty
    without a bound, the bound alone when it leaves the target within reach,
    and why not when it does not.

    ``better`` is how a value beats the target: ">" for a speedup (the bound
    must reach the target), "<" for a multiple of a limit (it must stay
    below it).
    """
    if bound is None:
        return ""
    clause = f"; {name} {bound:.2f}x"
    reachable = bound >= target if better == ">" else bound <= target
    if reachable:
        return clause
    beyond = "<" if better == ">" else ">"
    if quick:
        return f"{clause} {beyond} target (--quick: single timings, too noisy to judge)"
    return f"{clause} {beyond} target: {why}"


def print_results(rows, mem_rows, quick=False):
    step_rows = [r for r in rows if r.unit == "ns/param"]
    rows = [r for r in rows if r.unit != "ns/param"]
    header = ["workload", "unit", "sklearn", "cymlp", "torch", "jax", "GEMM floor",
              "FLOP limit", "speedup", "(med)", "target", "ok",
              "cy/floor", "(med)", "target", "ok", "cy/limit", "(med)", "target", "ok",
              "sk/floor", "torch/cy", "ok", "jax/cy", "ok"]
    body = []
    misses = []
    for r in rows:
        ratio, floor_x, torch_x = r.ratio(), r.floor_multiple(), r.torch_ratio()
        limit_x, jax_x = r.limit_multiple(), r.jax_ratio()
        sk_ok = verdict(ratio, r.sk_target)
        fl_ok = verdict(floor_x, r.spec.floor_target, at_least=False)
        li_ok = verdict(limit_x, r.spec.limit_target, at_least=False)
        to_ok = verdict(torch_x, r.spec.torch_target)
        jx_ok = verdict(jax_x, r.spec.jax_target)
        base = "" if r.baseline == "sklearn" else " (b)"
        body.append([
            r.name, r.unit,
            fmt_time(r.best("sklearn"), r.unit), fmt_time(r.best("cymlp"), r.unit),
            fmt_time(r.best("torch"), r.unit) + (" (c)" if r.torch_variant == "compiled"
                                                  else ""),
            fmt_time(r.best("jax"), r.unit),
            fmt_time(min(r.floor), r.unit) if r.floor else "-",
            fmt_time(min(r.limit), r.unit) if r.limit else "-",
            f"{ratio:.2f}x{base}", f"{r.ratio_med():.2f}x",
            f">={r.sk_target:g}x" if r.sk_target else "-", sk_ok,
            f"{floor_x:.2f}x" if floor_x else "-",
            f"{r.floor_multiple_med():.2f}x" if floor_x else "-",
            f"<={r.spec.floor_target:g}x" if r.spec.floor_target else "-", fl_ok,
            f"{limit_x:.2f}x" if limit_x else "-",
            f"{r.limit_multiple_med():.2f}x" if limit_x else "-",
            f"<={r.spec.limit_target:g}x" if r.spec.limit_target else "-", li_ok,
            f"{r.best('sklearn') / min(r.floor):.2f}x" if r.floor else "-",
            f"{torch_x:.2f}x" if torch_x else "-", to_ok,
            f"{jax_x:.2f}x" if jax_x else "-", jx_ok,
        ])
        if sk_ok == "MISS":
            bound = r.exact_bound() if r.baseline == "sklearn" else None
            misses.append(f"{r.name}: speedup {ratio:.2f}x, target >={r.sk_target:g}x "
                          f"({ratio / r.sk_target - 1:+.0%})"
                          + bound_clause("exact bound", bound, r.sk_target, ">", quick,
                                         "unreachable with sklearn's arithmetic on this BLAS"))
        if fl_ok == "MISS":
            misses.append(f"{r.name}: {floor_x:.2f}x the GEMM floor, target "
                          f"<={r.spec.floor_target:g}x")
        if li_ok == "MISS":
            misses.append(f"{r.name}: {limit_x:.2f}x the FLOP limit, target "
                          f"<={r.spec.limit_target:g}x"
                          + bound_clause("bound of the engine's chunks", r.limit_bound(),
                                         r.spec.limit_target, "<", quick,
                                         "unreachable with the chunks that keep the bits"
                                         " and the copy of the shuffled rows"))
        if verdict(r.scaling, r.spec.scaling_target) == "MISS":
            misses.append(f"{r.name}: thread scaling {r.scaling:.2f}x, target "
                          f">={r.spec.scaling_target:g}x"
                          + bound_clause("the engine's chunked products alone scale",
                                         r.products_scaling, r.spec.scaling_target, ">", quick,
                                         "the products themselves scale less on these threads"))
        if to_ok == "MISS":
            misses.append(f"{r.name}: torch/cymlp {torch_x:.2f}x: PyTorch is faster")
        if jx_ok == "MISS":
            misses.append(f"{r.name}: jax/cymlp {jax_x:.2f}x: JAX is faster")
    if body:
        print()
        print(table(header, body))
        print()
        print("Times: minimum over the repeats. speedup = sklearn / cymlp of those minima "
              "((b): baseline is cymlp n_jobs=1, see note);")
        print("(med) = median of the per-repeat ratios. cy/floor = cymlp / GEMM floor "
              "(scipy's BLAS, wrapper overhead subtracted).")
        print("FLOP limit = the epoch's flops (2 per multiply-add of its forward, weight-"
              "gradient and hidden-delta products) at the rate")
        print("of one 2000x2000 product through cymlp's own OpenBLAS on the engine's "
              "threads, measured interleaved; cy/limit = cymlp / FLOP limit.")
        print("sk/floor = sklearn / GEMM floor: the largest speedup over sklearn that an "
              "implementation doing these GEMMs on this BLAS can reach.")
        print("torch/cy = PyTorch loop / cymlp (above 1: cymlp is faster); torch (c): "
              "its torch.compile'd loop was faster than eager (see the notes).")
        print("jax/cy = JAX whole-epoch jit loop / cymlp. torch and jax run in worker "
              "processes of their own.")
        print_notes(rows, 13)

    if step_rows:
        print_step_table(step_rows)

    for _, spec, nbytes, result in mem_rows:
        print()
        print(f"Peak memory of fit ({spec.name}): X.nbytes = {nbytes / 2**20:.1f} MiB "
              f"(float32); target: growth < {spec.extra['growth_target']:.0%} of X.nbytes")
        mbody = []
        for lib, (traced, rss) in result.items():
            worst = max(v for v in (traced, rss) if v is not None)
            ok = verdict(-worst / nbytes, -spec.extra["growth_target"]) \
                if lib == "cymlp" else "-"
            mbody.append([
                lib, "1 epoch",
                f"{traced / 2**20:.1f} MiB" if traced is not None else "n/a",
                f"{traced / nbytes:.1%}" if traced is not None else "-",
                f"{rss / 2**20:.1f} MiB" if rss is not None else "n/a",
                f"{rss / nbytes:.1%}" if rss is not None else "-",
                ok,
            ])
            if ok == "MISS":
                misses.append(f"{spec.name}: cymlp's fit grows memory by "
                              f"{worst / nbytes:.0%} of X.nbytes")
        print(table(["library", "fit", "tracemalloc peak", "/X", "RSS growth", "/X", "ok"],
                    mbody))
        print("tracemalloc peak: Python and numpy allocations during fit (not torch's). "
              "RSS growth: peak resident set during fit")
        print("minus the RSS before it; memory freed earlier and reused does not show, "
              "a copy of X does (see the control row).")
        print("torch: in a worker process of its own, holding X; its RSS growth is that "
              "process's.")
    print()
    if misses:
        print("Targets missed (exact bound: sklearn / the time of the same GEMMs and "
              "optimizer steps alone, plus the search's own cost for grid-nj1):")
        for m in misses:
            print("  " + m)
    else:
        print("Every target of the workloads run was met.")


def jax_header_lines(others):
    """The JAX loop's version and its check against scikit-learn, run once, in
    a worker process (``jax_ref.check_one_epoch``)."""
    from .worker import Worker, WorkerError

    try:
        with Worker("jax", others.threads) as w:
            info, worst = w.info, w.call("check")
    except WorkerError as exc:
        return [f"jax: the worker failed ({exc}); the jax column will be empty"]
    ok = worst < 1e-10
    return [f"jax {info['version']} ({info['backend']}) in worker processes, "
            + xla_threads(info.get("cpus"), others.threads)
            + "; training rows only",
            f"jax loop checked: one epoch vs scikit-learn's MLPClassifier from the same "
            f"weights and batches (float64, adam and sgd): max relative difference "
            f"{worst:.1e} " + ("(ok, < 1e-10)" if ok else
                               "WARNING: above 1e-10, the jax loop is not sklearn's")]


def torch_header_line(args, others):
    """torch's threads and BLAS, asked of a worker process started for this
    alone (the suite's process does not import torch)."""
    from .worker import Worker, WorkerError

    try:
        with Worker("torch", others.threads) as w:
            info = w.info
    except WorkerError as exc:
        return f"torch: the worker failed ({exc}); the torch column will be empty"
    return (f"torch: torch.set_num_threads({info['threads']}) to match scipy's BLAS; "
            f"torch's own BLAS: {'MKL' if info['mkl'] else 'not MKL'}; training "
            + ("eager only (--no-compile)" if args.no_compile else
               "eager and torch.compile'd, the faster one shown")
            + "; every row in worker processes")


def print_header(args, threads, others):
    print("cymlp benchmark suite (benchmarks/run.py)" + (" --quick" if args.quick else ""))
    print(versions_line(cymlp) + (f"  torch {torch_version()}" if HAVE_TORCH else
                                  "  torch not installed (no PyTorch column)"))
    for line in machine_lines():
        print(line)
    load = load_average()
    if load:
        print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
              f"(1/5/15 min) on {os.cpu_count()} CPUs")
    setting = (f"--blas-threads {args.blas_threads} (threadpoolctl limit on every BLAS)"
               if args.blas_threads else "default (threads as set: not limited)")
    from .floors import engine_threads

    print(f"BLAS threads: {setting}; scipy's BLAS runs {threads} thread(s), cymlp's "
          f"engine {engine_threads() or '-'} (its own OpenBLAS, one per engine thread)")
    if others.torch:
        print(torch_header_line(args, others))
    if others.jax:
        for line in jax_header_lines(others):
            print(line)
    elif not args.no_jax:
        print("jax not installed (no JAX column)")
    for line in blas_report():
        print("  " + line)
    if load and load[0] > 0.5 and (threads or 1) > 1:
        print("note: other processes are running; multi-threaded BLAS can slow down "
              "badly when cores are busy (--blas-threads 1 is steadier)")
    if CYMLP_ERROR is not None:
        print(f"WARNING: cymlp is not importable ({CYMLP_ERROR}); timing sklearn against "
              "ITSELF: the 'cymlp' column is sklearn, ratios should be ~1.")


def xla_threads(cpus, threads):
    """How many CPUs the JAX worker's XLA ran on (``cpus``, from the worker;
    None: unknown), for the header, against the ``threads`` asked for."""
    cpus_here = usable_cpus()
    usable = len(cpus_here) if cpus_here is not None else os.cpu_count()
    if cpus is None:
        return "XLA's default threads" + (
            f" (not held to {threads}: no CPU affinity here)" if threads < (usable or 0) else "")
    if cpus < (usable or 0):
        return f"XLA pinned to {plural(cpus, 'CPU')}"
    return f"XLA's default threads ({plural(cpus, 'CPU')})"


def list_workloads(quick):
    for s in SPECS:
        targets = []
        if s.sk_target:
            targets.append(f">={s.sk_target:g}x sklearn")
        if s.kind == "grid":
            targets.append(f"n_jobs=2 threads >={s.extra['threads_target']:g}x "
                           "cymlp n_jobs=1")
        if s.floor_target:
            targets.append(f"<={s.floor_target:g}x GEMM floor")
        if s.limit_target:
            targets.append(f"<={s.limit_target:g}x FLOP limit")
        if s.scaling_target:
            targets.append(f"thread scaling >={s.scaling_target:g}x")
        if s.torch_target:
            targets.append("faster than torch")
        if s.jax_target:
            targets.append("faster than jax")
        if s.kind == "memory":
            targets.append(f"growth < {s.extra['growth_target']:.0%} of X.nbytes")
        if s.kind == "step":
            targets.append("none (measured: ns per parameter and step, next to sklearn's "
                           "own step)")
        desc = s.desc.format(mnist=MNIST_ROWS[quick], wide=WIDE_ROWS[quick])
        print(f"{s.name:<14} {desc}\n{'':<14} target: {'; '.join(targets)}")


def write_json(path, rows, threads):
    """The measured rows, machine-readable: best times, ratios and targets."""
    def num(x):
        return None if x is None else float(x)

    out = {
        "blas_threads": threads,
        "load_average": load_average(),
        "rows": [
            {
                "name": r.name,
                "unit": r.unit,
                "baseline": r.baseline,
                "best_seconds": {lib: num(r.best(lib)) for lib in r.times},
                "speedup": num(r.ratio()),
                "speedup_median": num(r.ratio_med()),
                "target": num(r.sk_target if r.sk_target is not None else r.spec.sk_target),
                "cymlp_over_floor": num(r.floor_multiple()),
                "exact_bound": num(r.exact_bound()),
                "floor_target": num(r.spec.floor_target),
                "flop_limit_seconds": num(min(r.limit)) if r.limit else None,
                "cymlp_over_limit": num(r.limit_multiple()),
                "cymlp_over_limit_median": num(r.limit_multiple_med()),
                "limit_target": num(r.spec.limit_target),
                "chunk_bound_over_limit": num(r.limit_bound()),
                "gather_over_limit": num(r.gather_share()),
                "torch_over_cymlp": num(r.torch_ratio()),
                "jax_over_cymlp": num(r.jax_ratio()),
                "torch_variant": r.torch_variant,
                "scaling": num(r.scaling),
                "scaling_target": num(r.spec.scaling_target),
                "products_scaling": num(r.products_scaling),
            }
            for r in rows
        ],
    }
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=str)
