"""The package's version, in one place: ``pyproject.toml`` reads it from here
(``[tool.setuptools.dynamic]``) and ``edutools.__version__`` re-exports it."""

__version__ = "0.2.0"
