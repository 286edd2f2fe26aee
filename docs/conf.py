"""Sphinx configuration for the cymlp documentation.

Build with warnings as errors (the gallery examples run during the build):

    python -m pip install ".[docs]"
    python -m sphinx -W -b html docs docs/_build/html

Nothing is fetched from the network: no intersphinx, and the examples use
scikit-learn's bundled data sets only.
"""

import importlib.util
import os
import re
import sys
from pathlib import Path

from threadpoolctl import threadpool_limits

import cymlp

# The gallery runs in this process. One thread keeps its small fits fast and
# steady on a busy machine: a BLAS limit of one puts scikit-learn's BLAS on
# one thread, and cymlp's engine, which follows a BLAS limit below the number
# of cores, too (docs/user_guide/threads.rst). The speed example sets the same
# limit itself, visibly.
threadpool_limits(limits=1, user_api="blas")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))  # for _gallery_order and _seed_figure

# -- Project ------------------------------------------------------------------

project = "cymlp"
author = "The cymlp developers"
copyright = "The cymlp developers"
release = cymlp.__version__
version = ".".join(release.split(".")[:2])

# -- General ------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "auto_examples/*.ipynb",
    "_generated/*.rst",  # included by the performance page
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
default_role = "literal"
# "--blas-threads" must stay two hyphens, not become an en dash
smartquotes = False
# Every cross-reference must resolve (nitpicky): a renamed page, section or
# cymlp object breaks the -W build instead of leaving a dead link. The docs
# are built offline, without intersphinx, so references to other projects'
# objects (scikit-learn's classes, dask's, ...) render as plain code and are
# exempt.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(sklearn|dask|dask_ml|distributed|joblib|numpy|scipy|pandas"
               r"|onnx|onnxruntime|skl2onnx|skops|threadpoolctl|matplotlib)(\..*)?"),
]
# The benchmark results page is benchmarks/RESULTS.md as it stands; its own
# heading levels and links to files of the repository are not the docs' concern.
suppress_warnings = ["myst.header", "myst.xref_missing"]

# -- API reference ------------------------------------------------------------

autosummary_generate = True
# cymlp.to_onnx imports skl2onnx and onnx, which come with the onnx extra, not
# with the docs extra: its page needs the docstring only, so where they are
# missing autodoc imports it against stand-ins (Sphinx's mock modules). Where
# they are installed, the real packages are used. Either way the page is the
# same, and `pip install ".[docs]"` alone builds the documentation.
autodoc_mock_imports = [
    name for name in ("onnx", "skl2onnx") if importlib.util.find_spec(name) is None
]
autodoc_typehints = "none"  # numpydoc's Parameters sections say it all
autodoc_member_order = "groupwise"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- HTML ---------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = "cymlp %s" % release
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
    # The examples' pages give their width to code and output (a progress
    # bar drawn for a terminal's 96 columns fits) instead of a table of
    # contents of a few short sections.
    "secondary_sidebar_items": {
        pattern: ["page-toc"]
        for pattern in ("index", "install", "quickstart", "api", "user_guide/*",
                        "generated/*", "_generated/*")
    } | {"auto_examples/*": []},
}
html_sidebars = {"install": [], "quickstart": []}
html_show_sourcelink = False

# -- Gallery ------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "_gallery_order.ExampleOrder",
    "doc_module": ("cymlp",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"cymlp": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "matplotlib_animations": False,
}

# -- Benchmark results --------------------------------------------------------
# The performance page shows benchmarks/RESULTS.md when the repository has it
# (the benchmark suite writes the tables, the maintainers commit them). It is
# copied into a page of its own, one heading level down under a title of ours.


_RELATIVE_LINK = re.compile(r"\[([^\]]+)\]\((?![a-z]+:|#)[^)\s]+\)")


def _write_benchmark_results():
    # CYMLP_BENCHMARK_RESULTS points elsewhere, to try a results file out
    default = ROOT / "benchmarks" / "RESULTS.md"
    source = Path(os.environ.get("CYMLP_BENCHMARK_RESULTS", default))
    out = DOCS / "_generated" / "benchmark_results.md"
    out.parent.mkdir(exist_ok=True)
    lines = ["# Measured results", ""]
    if source.is_file():
        lines += [
            "This page is `benchmarks/RESULTS.md` of the source repository: "
            "what `python benchmarks/run.py` measured on the machine described "
            "below. The ratios are the result; absolute times are that "
            "machine's.",
            "",
        ]
        text = source.read_text(encoding="utf-8").splitlines()
        # its own title gives way to ours; without one, its headings move down
        first = next((i for i, line in enumerate(text) if line.strip()), None)
        shift = ""
        if first is not None and re.match(r"#\s", text[first]):
            del text[first]
        else:
            shift = "#"
        in_fence = False
        for line in text:
            if re.match(r"\s*(```|~~~)", line):
                in_fence = not in_fence
            elif not in_fence:
                if shift and re.match(r"#{1,5}\s", line):
                    line = shift + line
                # links to files of the repository lead nowhere here: keep the text
                line = _RELATIVE_LINK.sub(r"\1", line)
            lines.append(line)
    else:
        lines += [
            "This build found no `benchmarks/RESULTS.md`, so there are no "
            "measured numbers to show here. Run the benchmark suite to get "
            "them for your own machine:",
            "",
            "```",
            'python -m pip install ".[bench]"',
            "python benchmarks/run.py --blas-threads 1",
            "```",
        ]
    text = "\n".join(lines) + "\n"
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")


_write_benchmark_results()


def _write_benchmark_summary():
    # The performance page's table and the numbers it quotes, from the same
    # benchmarks/results.json as README.md's table (benchmarks/summary.py)
    spec = importlib.util.spec_from_file_location(
        "benchmark_summary", ROOT / "benchmarks" / "summary.py"
    )
    summary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summary)
    results = summary.load()
    for name, text in [("benchmark_numbers.rst", summary.docs_substitutions(results)),
                       ("benchmark_table.rst", summary.docs_table(results))]:
        out = DOCS / "_generated" / name
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            out.write_text(text, encoding="utf-8")


_write_benchmark_summary()


def _write_seed_figure():
    # the landing page's picture, drawn from scikit-learn's bundled digits
    from _seed_figure import write

    write(DOCS / "_generated" / "seed.png")


_write_seed_figure()


# -- Inherited scikit-learn docstrings ------------------------------------------
# The estimators inherit methods from scikit-learn (score, get_params,
# set_params, the set_*_request methods of metadata routing). Their docstrings
# point into scikit-learn's own documentation (:ref:`metadata_routing`,
# :term:`meta-estimator`), which these docs do not contain and, offline, cannot
# link to. Keep the words, drop the cross-reference.

_SKLEARN_XREF = re.compile(r":(?:ref|term):`([^`<]+?)(?:\s*<([^>`]+)>)?`")


def _unlink_sklearn_xrefs(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        lines[i] = _SKLEARN_XREF.sub(lambda m: "*%s*" % m.group(1).strip(), line)


def setup(app):
    app.connect("autodoc-process-docstring", _unlink_sklearn_xrefs)
