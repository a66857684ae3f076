"""Code versions of cached results: a hash of every source file the computation can reach.

A cached result is only as current as the code that computed it. :func:`code_version` hashes the
source of the objects it is given **and of the import closure of their modules**: every module of
the same top-level package (and of ``edutools``) that those modules import, directly or through
others, at module level or inside a function, plus the ``__init__`` of every package on the way
(importing a module runs them). So an edit to the training loop changes the version of every
experiment that trains, and an edit to a plotting module changes none of them.

The closure is read from the source files (:mod:`ast`), without importing anything.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import sys
import types
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Top-level packages always followed, whatever package the hashed object lives in.
FOLLOWED_PACKAGES = ("edutools",)


def _source_of(obj: Any) -> str:
    """Source text of a module, class or function, or a stand-in when Python has none."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is not None:  # e.g. a function typed into a plain Python prompt
            return repr((code.co_code, code.co_consts, code.co_names))
        raise TypeError(f"code_version cannot read the source of {obj!r}") from None


def _package_root(top: str) -> Path | None:
    """The folder of top-level package ``top`` (it must already be imported), or None."""
    module = sys.modules.get(top)
    file = getattr(module, "__file__", None)
    return Path(file).parent if file and Path(file).name == "__init__.py" else None


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` found on disk (an alias resolved), or None."""
    top, _, rest = name.partition(".")
    aliases = getattr(sys.modules.get(top), "SHORT_NAMES", {})
    if rest in aliases:  # edutools.training -> edutools.engine.training
        return _module_file(aliases[rest])
    root = _package_root(top)
    if root is None:
        return None
    base = root.joinpath(*rest.split(".")) if rest else root
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=512)
def _imports_in(path: str, mtime_ns: int, size: int, module: str) -> frozenset[str]:
    """Absolute names of the modules (and possible submodules) a source file imports."""
    tree = ast.parse(Path(path).read_bytes(), filename=path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # maybe submodules
    return frozenset(names)


def import_closure(module_name: str) -> dict[str, Path]:
    """Module name → source file of every module ``module_name`` can reach by importing, within
    its own top-level package and :data:`FOLLOWED_PACKAGES` (itself included)."""
    followed = {module_name.partition(".")[0], *FOLLOWED_PACKAGES}
    found: dict[str, Path] = {}
    todo = [module_name]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        if parts[0] not in followed:
            continue
        for depth in range(1, len(parts) + 1):  # the packages on the way run their __init__
            prefix = ".".join(parts[:depth])
            if prefix in found:
                continue
            path = _module_file(prefix)
            if path is None:
                continue
            found[prefix] = path
            stat = path.stat()
            todo.extend(_imports_in(str(path), stat.st_mtime_ns, stat.st_size, prefix))
    return found


def code_version(*objects: Any) -> str:
    """A short hash of the source code of ``objects`` (modules, classes or functions) and of
    every module their computation can reach (see the module docstring).

    A function or class counts together with the whole module that defines it and that module's
    import closure; a function defined in a notebook counts by its own source. Pass further
    modules the experiment depends on (``code_version(run, some_module)``) when it reaches them
    other than by import.

    Raises:
        ValueError: if no object is given.
        TypeError: for a ``functools.partial`` (its bound arguments are not code: pass them as
            parameters instead) or an object without readable source.
    """
    if not objects:
        raise ValueError("code_version needs at least one module, class or function")
    digest = hashlib.sha256()
    closure: dict[str, Path] = {}
    for obj in objects:
        if not isinstance(obj, types.ModuleType | type) and not callable(obj):
            raise TypeError(f"code_version expects modules, classes or functions, got {obj!r}")
        if hasattr(obj, "func") and hasattr(obj, "keywords"):
            raise TypeError(
                f"code_version got a functools.partial ({obj!r}); pass the function itself and "
                "its bound arguments as parameters"
            )
        name = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
        digest.update(f"{getattr(obj, '__module__', '')}.{name}\n".encode())
        digest.update(_source_of(obj).encode())
        module = obj if isinstance(obj, types.ModuleType) else inspect.getmodule(obj)
        if module is not None and getattr(module, "__file__", None) \
                and module.__name__ != "__main__":
            digest.update(_source_of(module).encode())
            closure.update(import_closure(module.__name__))
    for module_name in sorted(closure):
        digest.update(f"\n{module_name}\n".encode())
        digest.update(closure[module_name].read_bytes())
    return digest.hexdigest()[:16]
