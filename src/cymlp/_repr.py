"""Links from an estimator's HTML representation to cymlp's documentation.

scikit-learn's HTML repr (what Jupyter shows for an estimator) puts a "?"
link to the estimator's API page in the diagram, and from scikit-learn 1.8 on
also links every parameter in the parameter table to its entry on that page.
The URL comes from the estimator: the class attributes ``_doc_link_module``,
``_doc_link_template`` and ``_doc_link_url_param_generator`` that
``BaseEstimator`` reads. By default they point at scikit-learn's website,
and for a class outside the ``sklearn`` package produce no link at all;
:class:`_DocLinkMixin` points them at cymlp's own pages instead.

The parameter links are scikit-learn's: the class page's URL plus a text
fragment (``#:~:text=<name>,-<type>``) built from the numpydoc
``name : type`` line of the class docstring, which is the text numpydoc
renders on the page. They need no anchors of ours.
"""

__all__ = ["API_PAGE_TEMPLATE", "api_page_url"]

# The one URL template. Read the Docs publishes the docs (.readthedocs.yaml)
# under /en/<version>/, and docs/api.rst has autosummary write each public
# class's page to generated/<module>.<name>.html, as scikit-learn's do.
API_PAGE_TEMPLATE = (
    "https://cymlp.readthedocs.io/en/{version}/generated/{module}.{name}.html"
)


def _docs_version(version):
    """The Read the Docs version whose pages match an installed cymlp.

    Read the Docs builds "latest" from the default branch and "stable" from
    the newest release tag; those two always exist, unlike a page per tag,
    which must be activated for each release. A development version (with
    ``dev`` in it) reads the development docs; a release, the released docs.
    """
    return "latest" if "dev" in version else "stable"


def _page_fields(cls):
    """The fields of API_PAGE_TEMPLATE for one of cymlp's public classes."""
    # Imported here: cymlp/__init__.py is still importing the estimator
    # modules (which import this one) when this module loads.
    from . import __version__

    # The page is named after the public path (cymlp.MLPClassifier), not
    # where the class is defined (cymlp._classifier): the module path up to
    # its first private component.
    public = []
    for part in cls.__module__.split("."):
        if part.startswith("_"):
            break
        public.append(part)
    return {
        "version": _docs_version(__version__),
        "module": ".".join(public),
        "name": cls.__name__,
    }


def api_page_url(cls):
    """The URL of the API reference page of one of cymlp's public classes.

    Parameters
    ----------
    cls : type
        A class importable as ``cymlp.<name>``, such as
        :class:`cymlp.MLPClassifier`.

    Returns
    -------
    url : str
        The page that ``docs/api.rst`` generates for ``cls``, on Read the Docs.

    Examples
    --------
    >>> import cymlp
    >>> from cymlp._repr import api_page_url
    >>> api_page_url(cymlp.MLPClassifier)  # doctest: +ELLIPSIS
    'https://cymlp.readthedocs.io/en/.../generated/cymlp.MLPClassifier.html'
    """
    return API_PAGE_TEMPLATE.format(**_page_fields(cls))


class _DocLinkMixin:
    """Point scikit-learn's HTML repr at cymlp's documentation.

    Put it before ``BaseEstimator`` in the bases, so that these attributes
    replace ``BaseEstimator``'s. scikit-learn links an estimator only when
    the first component of its class's module is ``_doc_link_module``: a
    subclass defined outside cymlp (whose page this is not) gets no link.

    Examples
    --------
    >>> import cymlp
    >>> cymlp.MLPRegressor()._get_doc_link()  # doctest: +ELLIPSIS
    'https://cymlp.readthedocs.io/en/.../generated/cymlp.MLPRegressor.html'
    """

    _doc_link_module = "cymlp"
    _doc_link_template = API_PAGE_TEMPLATE

    def _doc_link_url_param_generator(self):
        # BaseEstimator calls this and formats _doc_link_template with it
        return _page_fields(type(self))
