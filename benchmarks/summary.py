"""The benchmark summary, written from benchmarks/results.json alone.

README.md and benchmarks/RESULTS.md each hold the summary table between two
marker comments; the documentation's performance page includes the same
table and quotes the optimizer-step numbers through substitutions (written at
build time by docs/conf.py, with `docs_table` and `docs_substitutions`). The gallery's benchmark
example plots the same file. So every page that quotes the current round
quotes one file, and cannot disagree with another.

    python benchmarks/summary.py           # rewrite the tables in README.md and RESULTS.md
    python benchmarks/summary.py --check   # exit 1 if they differ from results.json

tests/test_benchmark_summary.py runs the check.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.json"
TARGETS = [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md"]
BEGIN = ("<!-- BEGIN results table: written by benchmarks/summary.py from "
         "benchmarks/results.json; edit those, not this -->")
END = "<!-- END results table -->"

# What each row of the table measures, in a reader's words.
LABELS = {
    "digits-b32": "digits, (100,), adam, batch 32, per epoch",
    "digits-b200": "digits, batch 200",
    "cancer-sgd-b1": "breast_cancer, sgd, batch 1",
    "mnist-f64": "60,000x784, (100,), batch 200, float64",
    "mnist-f32": "same, float32",
    "wide-f32": "20,000x784, (256, 256), float32",
    "predict-60k": "predict_proba, 60,000 rows, float32",
    "predict-1row": "predict_proba latency, one row",
    "grid-nj1": "GridSearchCV on digits, 12 fits",
    "grid-thr2": "same, threading backend, n_jobs=2 vs cymlp's n_jobs=1",
}


def load(path=RESULTS):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def ratio(x):
    """1.75x, 6.7x, 50x: two or three significant digits."""
    if x >= 20:
        return f"{x:.0f}x"
    if x >= 2.5:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


def verdict(value, target, higher_is_better=True):
    if target is None or value is None:
        return ""
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "missed"


def multiple_cell(r, key, target_key, median_key=None):
    """cymlp as a multiple of a floor or limit (``r[key]``; the median of the
    per-repeat ratios in parentheses with ``median_key``), with its target
    (``r[target_key]``, at most) and verdict where the row has one; "*" when
    the row's limit came from another run (``limit_run``)."""
    value = r.get(key)
    if value is None:
        return ""
    cell = f"{value:.2f}x"
    if median_key and r.get(median_key) is not None:
        cell += f" ({r[median_key]:.2f}x)"
    if r.get(target_key):
        cell += (f", <= {r[target_key]:g}x: "
                 f"{verdict(value, r[target_key], higher_is_better=False)}")
    if median_key and r.get("limit_run"):
        cell += " *"
    if median_key and r.get("chunk_bound_over_limit") is not None:
        cell += f"; bound {r['chunk_bound_over_limit']:.2f}x"
        if r.get("gather_over_limit") is not None:
            cell += f" (gather {r['gather_over_limit']:.2f}x)"
    return cell


def note_if_any(results, key, text):
    """``text`` (a clause explaining a word of the table's cells) when some
    row has ``key``, else ""."""
    return text if any(r.get(key) is not None for r in results["rows"]) else ""


BOUND_NOTE = ("; its bound = the engine's matrix products alone, cut into the chunks "
              "that keep its bits on any thread count, plus its optimizer steps{gather}, "
              "over the same limit: the least cymlp / FLOP limit those chunks allow")
GATHER_NOTE = (" and the copy of a shuffled epoch's rows into its minibatches (the "
               "gather, bound by the memory: its part of the bound in parentheses)")
PRODUCTS_NOTE = ("; products = the same for the engine's chunked products alone (one "
                 "thread / the same threads side by side), measured in the same run: "
                 "how far the arithmetic itself scales when the threads share the memory")


def limit_runs(results):
    """The other runs the FLOP-limit cells come from (``row["limit_run"]``)."""
    runs = {}
    for r in results["rows"]:
        run = r.get("limit_run")
        if run:
            runs.setdefault((run["date"], run["conditions"], run["run"]), run)
    return list(runs.values())


def table_rows(results):
    """The summary rows: one list of cells per workload with a target."""
    out = []
    for r in results["rows"]:
        if r["name"] not in LABELS:
            continue  # the step-* rows: no target, quoted in the text instead
        target = r["target"]
        cells = [LABELS[r["name"]]]
        cells.append(f"{ratio(r['speedup'])} ({ratio(r['speedup_median'])})")
        cells.append(f">= {target:g}x: {verdict(r['speedup'], target)}" if target else "")
        cells.append(ratio(r["exact_bound"]) if r.get("exact_bound") else "")
        floor = multiple_cell(r, "cymlp_over_floor", "floor_target")
        cells.append(floor.replace(", <=", " (<=", 1) + ")" if "<=" in floor else floor)
        cells.append(multiple_cell(r, "cymlp_over_limit", "limit_target",
                                   "cymlp_over_limit_median"))
        cells.append(scaling_cell(r))
        out.append(cells)
    return out


def scaling_cell(r):
    """cymlp on one thread / at its default threads, with its target and
    verdict on the large rows (which share out their passes; the small ones
    stay on one thread by design) and, where measured, how far the engine's
    chunked products alone scale on the same threads."""
    scaling = r.get("scaling")
    if scaling is None:
        return ""
    if not r.get("scaling_target"):
        return f"{scaling:.2f}x (serial by design)"
    cell = f"{scaling:.2f}x (>= {r['scaling_target']:g}x: {verdict(scaling, r['scaling_target'])}"
    if r.get("products_scaling") is not None:
        cell += f"; products {r['products_scaling']:.2f}x"
    return cell + ")"


HEADER = ["workload", "speedup vs sklearn (median)", "target", "bound",
          "cymlp / GEMM floor", "cymlp / FLOP limit", "scaling"]


def markdown_table(results):
    lines = [
        f"Measured {results['date']} on {results['machine']}; {results['threads']}. "
        "Speedup = scikit-learn's time / cymlp's, measured interleaved in one "
        "process (minimum over repeats; median of the per-repeat ratios in "
        "parentheses). Bound = scikit-learn's time / the time of the same work's "
        "matrix products and optimizer steps alone: the most that an "
        "implementation computing exactly what scikit-learn computes can reach "
        "on this BLAS. FLOP limit = the epoch's flops (2 per multiply-add of "
        "its forward, weight-gradient and hidden-delta products) at the fastest "
        "rate of one 2000x2000 product through cymlp's own BLAS on the same "
        "threads, measured in the same run as cymlp's time; the large rows' targets are "
        "set against it" + note_if_any(results, "chunk_bound_over_limit", BOUND_NOTE.format(
            gather=note_if_any(results, "gather_over_limit", GATHER_NOTE))) + ". "
        "Scaling = cymlp on one thread / cymlp at its default threads"
        + note_if_any(results, "products_scaling", PRODUCTS_NOTE) + "."
        + later_note(results),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(results)]
    return "\n".join(lines)


def later_note(results):
    """A sentence on the FLOP-limit cells marked * (from another run), or ""."""
    return "".join(f" *: FLOP limit measured {run['date']}, {run['conditions']} "
                   f"(`{run['run']}`); its ratio in that run, with the median of the "
                   "per-repeat ratios in parentheses." for run in limit_runs(results))


def replace_block(text, block):
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError("no results-table markers")
    return text[:start] + BEGIN + "\n" + block + "\n" + text[end:]


def _span(values, unit=" ns"):
    lo, hi = min(values), max(values)
    if f"{lo:.2f}" == f"{hi:.2f}":
        return f"{lo:.2f}{unit}"
    return f"{lo:.2f}-{hi:.2f}{unit}"


def step_numbers(results):
    """The optimizer-step numbers the performance page quotes, in ns per
    parameter and step (cymlp's best over the mnist- and digits-shaped rows)."""
    rows = {r["name"]: r for r in results["rows"]}

    def cymlp_ns(names):
        return [rows[n]["best_seconds"]["cymlp"] * 1e9 for n in names if n in rows]

    def names(dtype, path=""):
        return [f"step-adam-{dtype}-{shape}{path}" for shape in ("mnist", "digits")]

    # the divider-free paths' rows: AVX-512's where this CPU has it, else AVX2's
    fast = "" if any(r["name"].endswith("-fma") for r in results["rows"]) else "-avx2"
    divider = cymlp_ns(names("f64", "-divider"))
    chosen = cymlp_ns(names("f64"))
    sklearn = [rows[n]["best_seconds"]["sklearn"] * 1e9 for n in names("f64") if n in rows]
    bound_multiples = [r["exact_bound"] / r["speedup"] for r in results["rows"]
                       if r.get("exact_bound") and r["name"] in LABELS
                       and r["unit"] == "s/epoch"]
    return {
        "adam-divider-f64": _span(divider + chosen),
        "adam-fma-f64": _span(cymlp_ns(names("f64", "-fma" + fast))),
        "adam-hybrid-f64": _span(cymlp_ns(names("f64", "-hybrid" + fast))),
        "adam-fast-isa": "AVX-512" if fast == "" else "AVX2",
        "adam-divider-f32": _span(cymlp_ns(names("f32", "-divider") + names("f32"))),
        "adam-sklearn-f64": _span(sklearn),
        "epoch-over-bound": _span(bound_multiples, unit=""),
        "round-date": results["date"],
        "round-machine": results["machine"],
    }


def docs_substitutions(results):
    """reStructuredText substitutions for the numbers the performance page quotes."""
    return "".join(f".. |{name}| replace:: {value}\n"
                   for name, value in step_numbers(results).items())


def docs_table(results):
    """The summary table as reStructuredText, for the performance page."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for cells in [HEADER] + table_rows(results):
        lines.append("   * - " + (cells[0] or " "))
        lines += [f"     - {cell}" if cell else "     -" for cell in cells[1:]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that the tables match results.json")
    args = parser.parse_args(argv)
    block = markdown_table(load())
    stale = []
    for path in TARGETS:
        text = path.read_text(encoding="utf-8")
        new = replace_block(text, block)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"out of date with benchmarks/results.json: {names} "
              "(run python benchmarks/summary.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
