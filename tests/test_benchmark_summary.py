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
