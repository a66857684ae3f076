"""Sphinx configuration of the course website; ``python -m docs.build`` copies it into the
assembled source folder (``build/site_src``) and runs Sphinx there. Not run by hand."""

import json
from pathlib import Path

_site = json.loads((Path(__file__).parent / "site.json").read_text())  # written by docs.build

project = "Sharpness & Stability"
author = "the Sharpness & Stability course"
copyright = "the course's authors, MIT license"  # noqa: A001 (Sphinx's name)
extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"

# The lessons arrive executed (python -m docs.build runs them with papermill): never re-run.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "html_image"]
myst_dmath_double_inline = True  # the lessons write $$...$$ inside sentences, as Jupyter allows
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # a lesson may start at ## after its title cell

html_theme = "sphinx_book_theme"
html_title = project
html_baseurl = _site["pages_url"]
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_theme_options = {
    "repository_url": _site["repository_url"],
    "repository_branch": _site["branch"],
    "use_repository_button": True,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "extra_footer": _site["footer"],
}
html_show_sourcelink = False
html_copy_source = False
# MathJax from the site's own files (jupyter-server-mathjax's MathJax 2), not from a CDN; that
# package ships MathJax's STIX-Web fonts only.
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
# myst-nb marks the page body tex2jax_ignore and lets MathJax 3 typeset only these classes; say
# the same to MathJax 2. The HTML-CSS output with the STIX-Web fonts, the ones that package has
# (not the browser's own MathML, whose CSS asks for MathJax's TeX fonts).
mathjax2_config = {"tex2jax": {"processClass": "tex2jax_process|mathjax_process|math|output_area"},
                   "menuSettings": {"renderer": "HTML-CSS"},
                   "HTML-CSS": {"availableFonts": [], "preferredFont": None,
                                "webFont": "STIX-Web", "imageFont": None}}
