"""A small on-disk cache of experiment results, keyed by their parameters.

A grid of training runs, or a slider that moves to a point already computed, should not train
again. :class:`ResultCache` stores one file per parameter set under the user's cache directory
(never inside ``lessons/``), keyed by a stable hash of the parameters, and tagged with a
*version* string — usually :func:`code_version` of the experiment's code — so that an edit to
that code invalidates old entries instead of serving them.

Robustness rules, because a cache that crashes a lesson is worse than no cache:

* a file is written to a temporary name and moved into place with ``os.replace``, so a reader
  (another process, another notebook) sees either the whole old file or the whole new one;
* a truncated, garbled or unreadable file, or one written by another version of the code or for
  other parameters, is removed and reported as a miss: the caller recomputes;
* a failed write (disk full, read-only directory) only warns.

The directory is ``$EDUTOOLS_CACHE_DIR`` when set, else the platform's per-user cache directory
(see :func:`default_cache_dir`).

Entries hold data, never code (:mod:`edutools.ground.cache_format`: a JSON header, a checksum, a
JSON value tree and ``.npz`` arrays read with pickling off), so a file someone else dropped into
a shared cache folder cannot run anything: it is refused with a warning that names it. Versions
come from :func:`~edutools.ground.code_version.code_version`, which covers every edutools module
the computation imports.

Shared folders: an entry is readable by the group (and others) exactly when its folder is, so a
cache precomputed by an instructor into a group-readable folder serves every member of the group;
a reader who cannot write there gets hits and, for a missing entry, one warning that it cannot be
stored (computing it is still correct).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from edutools.ground.cache_format import CacheFormatError, read_header, read_payload, write_entry
from edutools.ground.canonical import canonical_float
from edutools.ground.code_version import code_version

__all__ = ["CACHE_ENV_VAR", "MISS", "CacheStats", "ResultCache", "cache_key", "code_version",
           "default_cache_dir"]

CACHE_ENV_VAR = "EDUTOOLS_CACHE_DIR"
_SUFFIX = ".entry"
_LEGACY_SUFFIX = ".pkl"  # format 1 (pickles): never read; removed by clear()


class _Miss:
    """Type of :data:`MISS`; a singleton that is falsy and prints as ``MISS``."""

    _instance: _Miss | None = None

    def __new__(cls) -> _Miss:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISS"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISS"  # unpickles as the module attribute, so identity survives pickling


MISS = _Miss()
"""Returned by :meth:`ResultCache.get` when there is no usable entry (``None`` is a valid value)."""


def default_cache_dir() -> Path:
    """The directory caches live under: ``$EDUTOOLS_CACHE_DIR`` or the user's cache directory.

    Linux and other Unix: ``$XDG_CACHE_HOME/edutools`` or ``~/.cache/edutools``; macOS:
    ``~/Library/Caches/edutools``; Windows: ``%LOCALAPPDATA%\\edutools\\Cache``. The directory is
    not created here.
    """
    override = os.environ.get(CACHE_ENV_VAR, "").strip()
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA", "").strip()
        root = Path(base) if base else Path.home() / "AppData" / "Local"
        return root / "edutools" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "edutools"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edutools"


def _canonical(value: Any, where: str) -> Any:
    """``value`` as plain JSON data whose text is the same for parameters that mean the same.

    Numbers are rounded by the course's one rule
    (:func:`~edutools.ground.canonical.canonical_float`, 12 significant digits), so
    ``0.9000000000000001`` (from a ``linspace`` slider) and ``0.9`` share a key, and an integral
    float equals the integer
    (``32.0`` ~ ``32``); ``-0.0`` is ``0``. Dicts are sorted by key, tuples become lists.
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        if not math.isfinite(number):
            return number  # json writes NaN / Infinity / -Infinity
        if number.is_integer() and abs(number) < 2**53:
            return int(number)
        return canonical_float(number)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list | tuple):
        return [_canonical(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        for name in value:
            if not isinstance(name, str):
                raise TypeError(f"{where} has a non-string key {name!r}; keys must be strings")
        return {name: _canonical(value[name], f"{where}[{name!r}]") for name in sorted(value)}
    raise TypeError(
        f"{where}={value!r} (type {type(value).__name__}) cannot be part of a cache key; use "
        "numbers, strings, booleans, None, or lists/dicts of them"
    )


def cache_key(params: Mapping[str, Any]) -> str:
    """A stable 32-hex-digit hash of ``params`` (order of keys and float noise do not matter).

    Raises:
        TypeError: if a value is not a number, string, bool, None, path, list/tuple or dict.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of names to values, got {type(params)}")
    text = json.dumps(_canonical(params, "params"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CacheStats:
    """Counters of one :class:`ResultCache` object since it was made.

    ``removed`` counts entries found corrupt or stale (and deleted); each also counts as a miss.
    """

    hits: int
    misses: int
    writes: int
    removed: int


class ResultCache:
    """A directory of results, one file per parameter set; see the module docstring.

    Args:
        namespace: a name for this kind of result (``"grid-lesson07"``); becomes a
            sub-directory, so characters other than letters, digits, ``. _ -`` become ``_``.
        version: the code version the results belong to (e.g. :func:`code_version` of the
            experiment); entries with another version are stale.
        directory: the parent directory; default :func:`default_cache_dir` (read now).

    Example::

        cache = ResultCache("sliders", version=code_version(experiment))
        value = cache.get(params)
        if value is MISS:
            value = experiment(**params)
            cache.put(params, value)
    """

    def __init__(self, namespace: str, *, version: str, directory: Path | str | None = None):
        if not isinstance(namespace, str) or not namespace.strip():
            raise ValueError(f"namespace must be a non-empty string, got {namespace!r}")
        if not isinstance(version, str):
            raise TypeError(f"version must be a string, got {version!r}")
        self.namespace = namespace
        self.version = version
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", namespace.strip()).lstrip(".") or "_"
        root = default_cache_dir() if directory is None else Path(directory).expanduser()
        self.directory = root / safe
        self._hits = self._misses = self._writes = self._removed = 0
        self._warned = False

    def __repr__(self) -> str:
        return f"ResultCache({self.namespace!r}, version={self.version!r}, at {self.directory})"

    @property
    def stats(self) -> CacheStats:
        """Hits, misses, writes and removed bad entries so far (a frozen snapshot)."""
        return CacheStats(self._hits, self._misses, self._writes, self._removed)

    def key(self, params: Mapping[str, Any]) -> str:
        """The key of ``params``: see :func:`cache_key`."""
        return cache_key(params)

    def path(self, params: Mapping[str, Any]) -> Path:
        """The file that does or would hold the entry for ``params``."""
        return self.directory / f"{self.key(params)}{_SUFFIX}"

    def get(self, params: Mapping[str, Any]) -> Any:
        """The stored value for ``params``, or :data:`MISS`.

        A stale entry (other version, other parameters) is deleted and reported as a miss. A file
        that is not a whole, well-formed entry (not ours, truncated, checksum mismatch, a type
        the format does not allow) is refused with a warning naming it, deleted, and a miss.
        Nothing in the file is interpreted before its key, version and checksum are checked.
        """
        key = self.key(params)
        path = self.directory / f"{key}{_SUFFIX}"
        try:
            blob = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            self._misses += 1
            return MISS
        except OSError as error:  # unreadable: treat like absent, say why
            warnings.warn(f"cache entry {path} cannot be read ({error}); recomputing",
                          stacklevel=2)
            self._misses += 1
            return MISS
        try:
            header, payload = read_header(blob)
            if header.get("key") != key or header.get("version") != self.version \
                    or header.get("params") != _canonical(params, "params"):
                value = MISS  # stale: an older version of the code, or a file copied by hand
            else:
                value = read_payload(header, payload)
        except CacheFormatError as error:
            warnings.warn(f"refused cache entry {path}: {error}; it is removed and recomputed",
                          stacklevel=2)
            value = MISS
        if value is MISS:
            self._discard(path)
            self._misses += 1
            return MISS
        self._hits += 1
        return value

    def _discard(self, path: Path) -> None:
        try:
            path.unlink()
            self._removed += 1
        except FileNotFoundError:
            pass  # another process removed or replaced it first
        except OSError as error:  # e.g. a shared folder this user may only read
            self._warn_once(f"cannot remove bad cache entry {path}: {error}")

    def _warn_once(self, message: str) -> None:
        if not self._warned:  # a read-only shared cache would otherwise warn on every miss
            self._warned = True
            warnings.warn(message, stacklevel=4)

    def put(self, params: Mapping[str, Any], value: Any) -> bool:
        """Store ``value`` for ``params`` atomically; return whether it was written.

        A value the format cannot hold (see :mod:`edutools.ground.cache_format`) or a failed
        write (read-only folder, disk full) warns and returns False.

        Raises:
            TypeError: if a parameter cannot be part of a key (see :func:`cache_key`).
        """
        key = self.key(params)
        header = {"key": key, "version": self.version, "params": _canonical(params, "params"),
                  "created": time.time()}
        target = self.directory / f"{key}{_SUFFIX}"
        try:
            blob = write_entry(header, value)
        except TypeError as error:
            self._warn_once(f"not caching the result for {target.name}: {error}")
            return False
        temporary = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # Same directory as the target, so os.replace is a rename within one file system.
            with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".tmp-", suffix=_SUFFIX,
                                             delete=False) as handle:
                temporary = Path(handle.name)
                handle.write(blob)
            _share_like_folder(temporary, self.directory)
            os.replace(temporary, target)
        except OSError as error:
            self._warn_once(f"could not write cache entry {target}: {error}")
            if temporary is not None:
                temporary.unlink(missing_ok=True)
            return False
        self._writes += 1
        return True

    def clear(self) -> int:
        """Delete every entry of this namespace (any version, old formats included); return how
        many were removed."""
        removed = 0
        if not self.directory.is_dir():
            return 0
        for suffix in (_SUFFIX, _LEGACY_SUFFIX):
            for path in self.directory.glob(f"*{suffix}"):
                try:
                    path.unlink()
                    removed += not path.name.startswith(".tmp-")
                except FileNotFoundError:
                    pass
        return removed

    def __len__(self) -> int:
        """Number of entry files present (current or not)."""
        if not self.directory.is_dir():
            return 0
        return sum(1 for _ in self.directory.glob(f"[!.]*{_SUFFIX}"))


def _share_like_folder(path: Path, folder: Path) -> None:
    """Give ``path`` read permission for group and others exactly where ``folder`` has it
    (``NamedTemporaryFile`` makes files 0600, which would hide a shared precompute)."""
    if os.name != "posix":
        return
    readable = stat.S_IMODE(folder.stat().st_mode) & (stat.S_IRGRP | stat.S_IROTH)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR | readable)
