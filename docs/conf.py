"""Sphinx configuration for mtlkit's documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from mtlkit import __version__

project = "mtlkit"
author = "mtlkit developers"
copyright = "2026, mtlkit developers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"mtlkit {__version__}"

# Results pages are generated from results/*.json at every build, never typed by hand.
sys.path.insert(0, os.path.dirname(__file__))
import generate_results  # noqa: E402

generate_results.write_pages()
import coursework_report  # noqa: E402

coursework_report.write_report()
import multi_mnist_table  # noqa: E402

multi_mnist_table.write()
import aggregation_cost_table  # noqa: E402

aggregation_cost_table.write()
import factorized_benchmark_tables  # noqa: E402

factorized_benchmark_tables.write()
import dmtrl_claims  # noqa: E402

dmtrl_claims.write()
import pooled_mnist_table  # noqa: E402

pooled_mnist_table.write()
import evolving_weights_table  # noqa: E402

evolving_weights_table.write()
import cifar_claims_table  # noqa: E402

cifar_claims_table.write()
