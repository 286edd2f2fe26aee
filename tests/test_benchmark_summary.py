"""The benchmark numbers that README.md, benchmarks/RESULTS.md and the
documentation quote are the ones in benchmarks/results.json."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _summary():
    spec = importlib.util.spec_from_file_location("summary", ROOT / "benchmarks" / "summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_tables_match_results_json():
    summary = _summary()
    table = summary.markdown_table(summary.load())
    for path in summary.TARGETS:
        text = path.read_text(encoding="utf-8")
        assert summary.replace_block(text, table) == text, (
            f"{path.name}'s results table differs from benchmarks/results.json: "
            "run python benchmarks/summary.py"
        )


def test_every_target_row_is_in_the_table():
    summary = _summary()
    results = summary.load()
    with_target = [r["name"] for r in results["rows"] if r["target"] is not None]
    assert with_target == [n for n in summary.LABELS if n in with_target]
    assert len(summary.table_rows(results)) == len(with_target)


def test_docs_include_quotes_the_step_rows():
    summary = _summary()
    results = summary.load()
    assert ".. |adam-divider-f64| replace:: " in summary.docs_substitutions(results)
    assert ".. list-table::" in summary.docs_table(results)


def test_scaling_cells_judge_the_large_rows_against_their_own_target():
    cell = _summary().scaling_cell
    assert cell({"scaling": None}) == ""
    assert cell({"scaling": 1.02, "scaling_target": None}) == "1.02x (serial by design)"
    assert cell({"scaling": 1.66, "scaling_target": 1.7}) == "1.66x (>= 1.7x: missed)"
    assert (cell({"scaling": 1.88, "scaling_target": 1.7, "products_scaling": 1.81})
            == "1.88x (>= 1.7x: met; products 1.81x)")


def test_large_rows_carry_the_issues_scaling_target():
    # issue #24: cymlp's own two-thread scaling >= 1.7x on every large row
    rows = {r["name"]: r for r in _summary().load()["rows"]}
    assert {n: rows[n].get("scaling_target") for n in ("mnist-f64", "mnist-f32", "wide-f32")} \
        == {"mnist-f64": 1.7, "mnist-f32": 1.7, "wide-f32": 1.7}
