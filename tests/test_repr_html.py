"""Links from the estimators' HTML representation to cymlp's documentation.

The reference for where a page is: the Read the Docs address the docs are
published at (.readthedocs.yaml) and the page docs/api.rst has Sphinx's
autosummary generate for each estimator; for a parameter's link, the
``name : type`` line of the class docstring, which numpydoc renders on that
page and which the link's text fragment must find there.
"""

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
import sklearn
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cymlp

ESTIMATORS = [cymlp.MLPClassifier, cymlp.MLPRegressor]
# Read the Docs serves the newest release as "stable", the default branch as "latest"
PUBLISHED_AT = "https://cymlp.readthedocs.io/en/%s/" % (
    "latest" if "dev" in cymlp.__version__ else "stable")
API_RST = Path(__file__).resolve().parents[1] / "docs" / "api.rst"

# scikit-learn links each parameter in the repr's parameter table from 1.8 on
SKLEARN_HAS_PARAM_LINKS = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 8)


class _Links(HTMLParser):
    """Every <a> of a document: its class attribute, href and text."""

    def __init__(self):
        super().__init__()
        self.links = []
        self._open = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            attrs = dict(attrs)
            link = {"class": (attrs.get("class") or "").split(),
                    "href": attrs.get("href"), "text": ""}
            self.links.append(link)
            self._open.append(link)

    def handle_endtag(self, tag):
        if tag == "a" and self._open:
            self._open.pop()

    def handle_data(self, data):
        for link in self._open:
            link["text"] += data


def _links(html, css_class):
    parser = _Links()
    parser.feed(html)
    return [link for link in parser.links if css_class in link["class"]]


def _api_page(name):
    """The page docs/api.rst generates for ``cymlp.<name>``, on the published docs."""
    if not API_RST.is_file():
        pytest.skip("needs the source tree's docs/api.rst")
    text = API_RST.read_text(encoding="utf-8")
    module = re.search(r"^\.\. currentmodule:: (\S+)", text, re.M).group(1)
    # the :toctree: of the autosummary block that lists the name
    for block in re.split(r"^\.\. autosummary::", text, flags=re.M)[1:]:
        entries = re.findall(r"^   (\w+)\s*$", block, re.M)
        if name in entries:
            toctree = re.search(r":toctree: (\S+)", block).group(1).strip("/")
            return f"{PUBLISHED_AT}{toctree}/{module}.{name}.html"
    raise AssertionError(f"docs/api.rst does not list {name}")


def _docstring_types(cls):
    """{parameter: type} from the Parameters section of the class docstring."""
    doc = cls.__doc__
    section = doc[doc.index("Parameters\n"):doc.index("Attributes\n")]
    return dict(re.findall(r"^    (\w+) : (.+)$", section, re.M))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_estimator_links_to_its_api_page(cls):
    page = _api_page(cls.__name__)
    html = cls()._repr_html_()
    assert [link["href"] for link in _links(html, "sk-estimator-doc-link")] == [page]


def test_estimator_in_pipeline_links_to_its_api_page():
    html = make_pipeline(StandardScaler(), cymlp.MLPRegressor())._repr_html_()
    hrefs = [link["href"] for link in _links(html, "sk-estimator-doc-link")]
    assert _api_page("MLPRegressor") in hrefs
    # the other steps keep scikit-learn's own links
    assert any("scikit-learn.org" in href and "StandardScaler" in href for href in hrefs)


def test_subclass_outside_cymlp_has_no_cymlp_link():
    # A user's subclass is not what cymlp's page documents.
    class MyRegressor(cymlp.MLPRegressor):
        pass

    html = MyRegressor()._repr_html_()
    assert not any("cymlp.readthedocs.io" in (link["href"] or "")
                   for link in _links(html, "sk-estimator-doc-link"))


@pytest.mark.skipif(not SKLEARN_HAS_PARAM_LINKS,
                    reason="parameter links in the HTML repr need scikit-learn >= 1.8")
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_parameter_links_to_its_entry(cls):
    page = _api_page(cls.__name__)
    types = _docstring_types(cls)
    links = _links(cls(max_iter=7)._repr_html_(), "param-doc-link")
    by_name = {link["text"].split()[0]: link for link in links}
    params = cls().get_params(deep=False)
    # every parameter has its own docstring entry, and so its own link
    assert set(types) == set(params)
    assert set(by_name) == set(params)
    for name, link in by_name.items():
        fragment = f"{quote(name)},-{quote(types[name].replace('`', ''))}"
        assert link["href"] == f"{page}#:~:text={fragment}", name
        # the hover text is that entry's description
        assert len(link["text"].split()) > 3, name


def _docstring_entries(cls):
    """{parameter: its whole docstring entry} of the Parameters section."""
    doc = cls.__doc__
    section = doc[doc.index("Parameters\n"):doc.index("Attributes\n")]
    return dict(re.findall(r"^    (\w+) : (.+\n(?:        .*\n|\n(?=        ))*)", section, re.M))


def test_shared_parameters_documented_alike():
    # The regressor repeats the classifier's entries so that each parameter
    # has its own link and hover text; keep the two copies the same.
    classifier = _docstring_entries(cymlp.MLPClassifier)
    regressor = _docstring_entries(cymlp.MLPRegressor)
    # early stopping's validation score is R^2, not accuracy
    differ = {"early_stopping"}
    shared = set(classifier) & set(regressor)
    assert len(shared) >= 20
    for name in shared - differ:
        assert regressor[name] == classifier[name], name
