"""The documentation's code runs as written.

Every ``.. code-block:: python`` of the pages in ``docs/`` and
``docs/user_guide/``, and every ```python block of README.md, is run, in page
order, in one namespace per page (a page's later snippets use what its
earlier ones defined), in a temporary directory. The examples in the public
docstrings (the API reference) run as doctests.

A page marks what cannot run here with a comment just above the block, which
the rendered page does not show:

``.. snippet: not run: <reason>``
    shown, never run (it needs a cluster, your own files, a network ...);
``.. snippet: needs <module> ...``
    runs where those modules import (an optional extra), is skipped where
    they do not, and so are the page's later snippets;
``.. snippet setup`` followed by an indented block
    code run before the next snippet, for names that the page's prose takes
    as given (your ``X`` and ``y``).

README.md uses the same words in an HTML comment: ``<!-- snippet: ... -->``.
"""

import doctest
import os
import re
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sklearn

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md"] + sorted(DOCS.glob("*.rst")) + sorted(
    (DOCS / "user_guide").glob("*.rst")
)


@dataclass
class Snippet:
    page: Path
    line: int  # 1-based line of the block's first line of code
    code: str
    not_run: str = None  # the reason, if the page marks it so
    needs: list = field(default_factory=list)
    setup: str = ""  # hidden setup code to run first

    @property
    def id(self):
        return f"{self.page.relative_to(ROOT)}:{self.line}"


_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block:: python3?\s*$")
_MARK = re.compile(r"^\s*(?:\.\.|<!--)\s*snippet:\s*(.*?)\s*(?:-->)?\s*$")
_SETUP = re.compile(r"^(\s*)\.\. snippet setup\s*$")


def _indented_block(lines, start, indent):
    """The lines from `start` indented deeper than `indent` (blank lines
    inside included), and the index after them."""
    body = []
    i = start
    while i < len(lines):
        line = lines[i]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
        i += 1
    while body and not body[-1].strip():
        body.pop()
    return body, i


def _apply_mark(text, state):
    if text.startswith("not run:"):
        state["not_run"] = text[len("not run:"):].strip()
        if not state["not_run"]:
            raise ValueError("a 'snippet: not run:' mark needs a reason")
    elif text.startswith("needs "):
        state["needs"] = text[len("needs "):].split()
    else:
        raise ValueError(f"unknown snippet mark {text!r}")


def rst_snippets(page):
    lines = page.read_text(encoding="utf-8").splitlines()
    snippets, state, setup = [], {}, []
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _MARK.match(line):
            _apply_mark(m.group(1), state)
            i += 1
        elif m := _SETUP.match(line):
            body, i = _indented_block(lines, i + 1, len(m.group(1)))
            setup.append(textwrap.dedent("\n".join(body)))
        elif m := _DIRECTIVE.match(line):
            indent = len(m.group(1))
            i += 1
            while i < len(lines) and re.match(r"^\s+:\w[\w-]*:", lines[i]):
                i += 1  # the directive's options
            first = i
            while first < len(lines) and not lines[first].strip():
                first += 1
            body, i = _indented_block(lines, first, indent)
            snippets.append(Snippet(page, first + 1, textwrap.dedent("\n".join(body)),
                                    setup="\n".join(setup), **state))
            state, setup = {}, []
        else:
            i += 1
    return snippets


def markdown_snippets(page):
    lines = page.read_text(encoding="utf-8").splitlines()
    snippets, state = [], {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _MARK.match(line):
            _apply_mark(m.group(1), state)
            i += 1
        elif line.strip() in ("```python", "```py"):
            start = i + 1
            end = start
            while not lines[end].startswith("```"):
                end += 1
            snippets.append(Snippet(page, start + 1, "\n".join(lines[start:end]), **state))
            state = {}
            i = end + 1
        else:
            i += 1
    return snippets


def page_snippets(page):
    return markdown_snippets(page) if page.suffix == ".md" else rst_snippets(page)


SNIPPETS = [s for page in PAGES for s in page_snippets(page)]


class _PageRun:
    """One page's namespace and how far its snippets have run."""

    def __init__(self):
        self.namespace = {"__name__": "__doc_snippet__"}
        self.done = 0  # index (in the page's snippets) of the next one to run
        self.blocked = None  # why the page's later snippets cannot run


_runs = {}


def _run_one(snippet, run, workdir):
    if snippet.not_run:
        return
    if run.blocked:
        pytest.skip(run.blocked)
    for module in snippet.needs:
        try:
            __import__(module)
        except ImportError:
            run.blocked = f"needs {module} (an optional extra), as an earlier snippet did"
            pytest.skip(f"needs {module} (an optional extra)")
    old = os.getcwd()
    os.chdir(workdir)
    try:
        # what a snippet sets globally (scikit-learn's configuration, warning
        # filters) ends with it, so that it reaches no other test
        with sklearn.config_context(), warnings.catch_warnings():
            if snippet.setup:
                exec(compile(snippet.setup, f"{snippet.id} (setup)", "exec"), run.namespace)
            exec(compile(snippet.code, snippet.id, "exec"), run.namespace)
    except BaseException:
        run.blocked = f"an earlier snippet of {snippet.page.name} failed"
        raise
    finally:
        os.chdir(old)
        _close_figures()


def _close_figures():
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    os.environ.setdefault("MPLBACKEND", "Agg")
    yield tmp_path_factory.mktemp("doc_snippets")
    # what the pages started (a dask client and cluster) ends with the module
    for run in _runs.values():
        for value in list(run.namespace.values()):
            if type(value).__name__ in ("Client", "LocalCluster"):
                value.close()
    _runs.clear()


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_snippet(snippet, workdir):
    same_page = [s for s in SNIPPETS if s.page == snippet.page]
    index = same_page.index(snippet)
    run = _runs.setdefault(snippet.page, _PageRun())
    if run.done > index:  # selected again: start the page over
        run = _runs[snippet.page] = _PageRun()
    # the earlier snippets of the page first, when they were not selected
    for earlier in same_page[run.done:index]:
        try:
            _run_one(earlier, run, workdir)
        except pytest.skip.Exception:
            pass
        run.done += 1
    run.done = index + 1
    if snippet.not_run:
        pytest.skip(f"not run: {snippet.not_run}")
    _run_one(snippet, run, workdir)


def test_pages_have_snippets():
    """The extraction finds the pages' code (a changed directive would
    otherwise make every snippet silently disappear)."""
    pages = {s.page.name for s in SNIPPETS}
    assert {"README.md", "quickstart.rst", "threads.rst", "extras.rst"} <= pages


# -- docstrings -----------------------------------------------------------------


def _public_objects():
    import cymlp

    names = ["MLPClassifier", "MLPRegressor", "ProgressBar", "TrainingCurveDisplay",
             "to_onnx", "patch_sklearn", "unpatch_sklearn", "sklearn_is_patched"]
    return names


@pytest.mark.parametrize("name", _public_objects())
def test_docstring_examples(name):
    import cymlp

    if name == "to_onnx":
        pytest.importorskip("skl2onnx")
        pytest.importorskip("onnxruntime")
    obj = getattr(cymlp, name)
    finder = doctest.DocTestFinder(recurse=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    tests = [t for t in finder.find(obj, f"cymlp.{name}", globs={}) if t.examples]
    # only cymlp's own docstrings: inherited scikit-learn methods are theirs
    tests = [t for t in tests if not _inherited_from_sklearn(obj, t.name)]
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of cymlp.{name} failed"


def _inherited_from_sklearn(obj, test_name):
    parts = test_name.split(".")[2:]  # after cymlp.<name>
    target = obj
    for part in parts:
        target = getattr(target, part, None)
    module = getattr(target, "__module__", "") or ""
    return module.startswith("sklearn")
