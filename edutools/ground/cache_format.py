"""The file format of :class:`~edutools.ground.cache.ResultCache` entries: data, never code.

An entry must be safe to read from a folder other people can write to (a shared lab cache), so
nothing in it can make the reader run code: no pickle anywhere. A file is::

    MAGIC                      b"EDUTOOLS-CACHE 2\\n"
    8-byte length, header      JSON: key, version, params, sha256 of the payload, created
    payload                    8-byte length, value tree (JSON), then arrays (.npz, no pickles)

:func:`read_entry` parses the header with :func:`json.loads`, and the caller compares key,
version and parameters before the payload is looked at; the payload's SHA-256 is checked before
it is parsed; arrays are loaded with ``allow_pickle=False``.

The value tree (:func:`encode` / :func:`decode`) stores what the course's run functions return:
``None``, booleans, numbers (NaN and ±inf included), strings, lists, tuples, dicts (any keys of
these kinds), numpy arrays and scalars (numeric, boolean, string or datetime dtypes; object
arrays element by element), torch tensors, pandas ``DataFrame``/``Series``/``Index``, paths and
frozen or plain **dataclasses defined in the edutools package** (named by module and class; a
file that names anything else is refused, so a crafted file cannot make the reader import or
call an arbitrary callable). Anything else raises :class:`TypeError` on :func:`encode`: the cache
then does not store that value, it never guesses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import struct
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
import torch

MAGIC = b"EDUTOOLS-CACHE 2\n"
#: Packages whose dataclasses may be named in an entry (and so imported by a reader).
ALLOWED_PACKAGES = ("edutools",)
_MAX_HEADER = 1 << 20  # a header is parameters and a few hashes; more is not ours
_LENGTH = struct.Struct(">Q")
_TAG = "$"


class CacheFormatError(ValueError):
    """The bytes are not a whole, well-formed entry (the message says what is wrong)."""


# -- writing ------------------------------------------------------------------------------------


def write_entry(header: dict[str, Any], value: Any) -> bytes:
    """The bytes of an entry holding ``value`` with ``header`` (``sha256`` is added here).

    Raises:
        TypeError: a part of ``value`` has a type the format cannot store (see module docs).
    """
    arrays: dict[str, np.ndarray] = {}
    tree = json.dumps(encode(value, arrays), separators=(",", ":")).encode()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = _LENGTH.pack(len(tree)) + tree + buffer.getvalue()
    header = {**header, "sha256": hashlib.sha256(payload).hexdigest()}
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + _LENGTH.pack(len(head)) + head + payload


def encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` as JSON data; arrays go into ``arrays`` under the names the tree refers to."""
    if value is None or type(value) in (bool, str, int, float):  # not subclasses: exact types
        return value
    if isinstance(value, list):
        return [encode(item, arrays) for item in value]
    if type(value) is tuple:
        return {_TAG: "tuple", "items": [encode(item, arrays) for item in value]}
    if type(value) is dict:
        return {_TAG: "dict", "items": [[encode(k, arrays), encode(v, arrays)]
                                        for k, v in value.items()]}
    if isinstance(value, np.ndarray | np.generic):
        return _encode_numpy(value, arrays)
    if isinstance(value, torch.Tensor):
        return {_TAG: "tensor", "array": _encode_numpy(value.detach().cpu().numpy(), arrays)}
    if isinstance(value, pd.DataFrame | pd.Series | pd.Index):
        return _encode_pandas(value, arrays)
    if isinstance(value, PurePath):
        return {_TAG: "path", "type": type(value).__name__, "text": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_dataclass(value, arrays)
    raise TypeError(f"a result cache cannot store a {type(value).__module__}."
                    f"{type(value).__qualname__}")


def _encode_numpy(value: np.ndarray | np.generic, arrays: dict[str, np.ndarray]) -> Any:
    array = np.asarray(value)
    if array.dtype.hasobject:
        return {_TAG: "objects", "shape": list(array.shape), "scalar": np.isscalar(value),
                "items": [encode(item, arrays) for item in array.ravel().tolist()]}
    name = f"a{len(arrays)}"
    arrays[name] = array
    return {_TAG: "scalar" if isinstance(value, np.generic) else "array", "ref": name}


def _encode_pandas(value: pd.DataFrame | pd.Series | pd.Index,
                   arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, pd.Index):
        if isinstance(value, pd.RangeIndex):
            return {_TAG: "range", "start": value.start, "stop": value.stop, "step": value.step,
                    "name": encode(value.name, arrays)}
        if isinstance(value, pd.MultiIndex):
            raise TypeError("a result cache cannot store a pandas MultiIndex")
        return {_TAG: "index", "values": _encode_numpy(value.to_numpy(), arrays),
                "dtype": str(value.dtype), "name": encode(value.name, arrays)}
    if isinstance(value, pd.Series):
        return {_TAG: "series", "values": _encode_numpy(value.to_numpy(), arrays),
                "dtype": str(value.dtype), "index": _encode_pandas(value.index, arrays),
                "name": encode(value.name, arrays), "attrs": encode(dict(value.attrs), arrays)}
    return {_TAG: "frame", "columns": _encode_pandas(value.columns, arrays),
            "data": [_encode_pandas(value.iloc[:, i], arrays) for i in range(value.shape[1])],
            "index": _encode_pandas(value.index, arrays),
            "attrs": encode(dict(value.attrs), arrays)}


def _encode_dataclass(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    cls = type(value)
    if not _allowed_module(cls.__module__) or "<" in cls.__qualname__:
        raise TypeError(f"a result cache stores only dataclasses of {ALLOWED_PACKAGES}, not "
                        f"{cls.__module__}.{cls.__qualname__}")
    return {_TAG: "dataclass", "type": f"{cls.__module__}:{cls.__qualname__}",
            "fields": {f.name: encode(getattr(value, f.name), arrays)
                       for f in dataclasses.fields(value)}}


def _allowed_module(name: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in ALLOWED_PACKAGES)


# -- reading ------------------------------------------------------------------------------------


def read_header(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON header of an entry and its payload bytes (not yet checked or parsed).

    Raises:
        CacheFormatError: no format tag, a truncated file, or a header that is not JSON.
    """
    if not blob.startswith(MAGIC):
        raise CacheFormatError("it does not start with the edutools cache format tag")
    start = len(MAGIC) + _LENGTH.size
    if len(blob) < start:
        raise CacheFormatError("it is truncated")
    (length,) = _LENGTH.unpack_from(blob, len(MAGIC))
    if length > _MAX_HEADER or start + length > len(blob):
        raise CacheFormatError(f"its header length ({length} bytes) does not fit the file")
    try:
        header = json.loads(blob[start:start + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CacheFormatError(f"its header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise CacheFormatError("its header is not a JSON object")
    return header, blob[start + length:]


def read_payload(header: dict[str, Any], payload: bytes) -> Any:
    """The value stored in ``payload``, after checking it against the header's checksum.

    Raises:
        CacheFormatError: checksum mismatch, damaged arrays, or a tree that names a type this
            format does not allow.
    """
    if header.get("sha256") != hashlib.sha256(payload).hexdigest():
        raise CacheFormatError("its checksum does not match its contents")
    if len(payload) < _LENGTH.size:
        raise CacheFormatError("its payload is truncated")
    (length,) = _LENGTH.unpack_from(payload)
    try:
        tree = json.loads(payload[_LENGTH.size:_LENGTH.size + length].decode("utf-8"))
        with np.load(io.BytesIO(payload[_LENGTH.size + length:]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return decode(tree, arrays)
    except CacheFormatError:
        raise
    except Exception as error:  # any parse failure means a damaged or foreign file
        raise CacheFormatError(f"its contents cannot be read ({type(error).__name__}: "
                               f"{error})") from None


def decode(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The value :func:`encode` turned into ``tree``; raises :class:`CacheFormatError`."""
    if tree is None or isinstance(tree, bool | str | int | float):
        return tree
    if isinstance(tree, list):
        return [decode(item, arrays) for item in tree]
    if not isinstance(tree, dict) or not isinstance(tree.get(_TAG), str):
        raise CacheFormatError(f"its value tree holds an unknown node {str(tree)[:60]!r}")
    tag = tree[_TAG]
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise CacheFormatError(f"its value tree holds an unknown type tag {tag!r}")
    return decoder(tree, arrays)


def _decode_array(tree: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    if tree[_TAG] == "objects":
        items = [decode(item, arrays) for item in tree["items"]]
        array = np.empty(len(items), dtype=object)
        array[:] = items if items else array[:]
        array = array.reshape(tree["shape"])
        return array[()] if tree["scalar"] else array
    array = arrays[tree["ref"]]
    return array[()] if tree[_TAG] == "scalar" else array


def _decode_index(tree: dict[str, Any], arrays: dict[str, np.ndarray]) -> pd.Index:
    if tree[_TAG] == "range":
        return pd.RangeIndex(tree["start"], tree["stop"], tree["step"],
                             name=decode(tree["name"], arrays))
    index = pd.Index(_decode_array(tree["values"], arrays), name=decode(tree["name"], arrays),
                     tupleize_cols=False)
    return index if str(index.dtype) == tree["dtype"] else index.astype(tree["dtype"])


def _decode_series(tree: dict[str, Any], arrays: dict[str, np.ndarray]) -> pd.Series:
    series = pd.Series(_decode_array(tree["values"], arrays),
                       index=_decode_index(tree["index"], arrays),
                       name=decode(tree["name"], arrays), copy=False)
    if str(series.dtype) != tree["dtype"]:
        series = series.astype(tree["dtype"])
    series.attrs.update(decode(tree["attrs"], arrays))
    return series


def _decode_frame(tree: dict[str, Any], arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    columns = _decode_index(tree["columns"], arrays)
    index = _decode_index(tree["index"], arrays)
    # Columns by position on a plain range index: labels may repeat, in columns and rows alike.
    data = [_decode_series(item, arrays).reset_index(drop=True) for item in tree["data"]]
    frame = pd.concat(data, axis=1, ignore_index=True) if data else pd.DataFrame(
        index=pd.RangeIndex(len(index)))
    frame.columns = columns
    frame.index = index
    frame.attrs.update(decode(tree["attrs"], arrays))
    return frame


def _decode_dataclass(tree: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    module_name, _, qualname = str(tree["type"]).partition(":")
    if not _allowed_module(module_name) or not qualname:
        raise CacheFormatError(f"it names the type {tree['type']!r}, which is not an edutools "
                               "dataclass")
    try:  # importing an edutools module runs only the course's own code
        cls: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError):
        raise CacheFormatError(f"its type {tree['type']!r} no longer exists") from None
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls) \
            or cls.__module__ != module_name:
        raise CacheFormatError(f"it names {tree['type']!r}, which is not an edutools dataclass")
    fields = tree["fields"]
    if set(fields) != {f.name for f in dataclasses.fields(cls)}:
        raise CacheFormatError(f"its fields of {tree['type']!r} differ from the class's")
    value = object.__new__(cls)  # no __init__/__post_init__: the fields are restored as stored
    for name, item in fields.items():
        object.__setattr__(value, name, decode(item, arrays))
    return value


def _decode_tensor(tree: dict[str, Any], arrays: dict[str, np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.array(_decode_array(tree["array"], arrays)))


def _decode_path(tree: dict[str, Any], arrays: dict[str, np.ndarray]) -> PurePath:
    import pathlib

    kinds = {"PosixPath": pathlib.Path, "WindowsPath": pathlib.Path,
             "PurePosixPath": pathlib.PurePosixPath, "PureWindowsPath": pathlib.PureWindowsPath}
    return kinds.get(tree["type"], pathlib.PurePath)(tree["text"])


_DECODERS = {
    "tuple": lambda tree, arrays: tuple(decode(item, arrays) for item in tree["items"]),
    "dict": lambda tree, arrays: {_hashable(decode(k, arrays)): decode(v, arrays)
                                  for k, v in tree["items"]},
    "array": _decode_array, "scalar": _decode_array, "objects": _decode_array,
    "tensor": _decode_tensor, "range": _decode_index, "index": _decode_index,
    "series": _decode_series, "frame": _decode_frame, "dataclass": _decode_dataclass,
    "path": _decode_path,
}


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        raise CacheFormatError(f"its value tree has an unhashable dict key {key!r}") from None
    return key
