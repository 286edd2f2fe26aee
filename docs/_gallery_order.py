"""The order of the gallery: from a first network to tuning and speed.

sphinx-gallery takes a sort key class by its qualified name
(``within_subsection_order``); conf.py puts this directory on sys.path.
"""

ORDER = [
    "plot_digits.py",
    "plot_activations.py",
    "plot_early_stopping.py",
    "plot_modern_recipe.py",
    "plot_callbacks.py",
    "plot_quantile_interval.py",
    "plot_hidden_features.py",
    "plot_grid_search.py",
    "plot_speed.py",
    "plot_patch_sklearn.py",
    "plot_benchmark_suite.py",
]


class ExampleOrder:
    """Sort key: the examples listed in ORDER first, in that order, then the rest by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = str(filename)
        return (ORDER.index(name), name) if name in ORDER else (len(ORDER), name)

    def __repr__(self):
        return "<ExampleOrder>"
