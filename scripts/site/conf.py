"""Sphinx configuration of the course website (used by scripts/build_site.py).

Sphinx with MyST-NB (the engine of Jupyter Book 1) and the sphinx-book-theme:
the tool and look this community knows from Jupyter Book sites, installed from
PyPI, building offline. The notebooks arrive already executed (build/executed/),
so MyST-NB only renders them. MathJax is served from the site itself
(build_site.py copies it into _static/mathjax), never from a CDN.
"""

project = "Practical Image Embeddings with PyTorch"
author = "The course's authors"
copyright = "the course's authors"
html_title = project

extensions = ["myst_nb"]
nb_execution_mode = "off"  # executed once by scripts/execute_lessons.py
nb_ipywidgets_js = {}  # no widget scripts from a CDN (widget outputs are dropped)
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "html_image", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "_static"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

html_theme = "sphinx_book_theme"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
}
# The theme's light/dark switch starts from this mode (left empty, the theme logs an error).
html_context = {"default_mode": "light"}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False
# The math renderer, from the site's own files (build_site.py sets html_static_path).
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"chtml": {"fontURL": "_static/mathjax/output/chtml/fonts/woff-v2"}}
