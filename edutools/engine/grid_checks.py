"""Input checks and result tidying for :mod:`edutools.engine.grid`.

Everything here runs before a single training run starts (except :func:`tidy_result`, which runs
in the worker), so bad input costs a second, not an hour of compute.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from edutools.ground.cache import cache_key
from edutools.ground.validation import (
    check_batch_size,
    check_lr,
    check_momentum,
    check_positive_int,
)

__all__ = ["check_configurations", "check_parameter_names", "check_seeds", "expand_grid",
           "tidy_result"]


def expand_grid(
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The list of configurations a grid stands for.

    A mapping ``{name: values}`` gives every combination (``itertools.product``, the last name
    varying fastest); a sequence of mappings is taken as the list itself.

    Raises:
        ValueError: for an empty grid, a name with no values, or a repeated configuration.
        TypeError: for a name whose values are a single string or number instead of a list.
    """
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid is empty: give at least one parameter with values")
        for name, values in grid.items():
            if not isinstance(name, str):
                raise TypeError(f"grid parameter names must be strings, got {name!r}")
            if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
                raise TypeError(
                    f"grid[{name!r}] must be a list of values, got {values!r}; a single value "
                    "shared by every run belongs in fixed="
                )
            if len(values) == 0:
                raise ValueError(f"grid[{name!r}] is empty: give at least one value")
        names = list(grid)
        configurations = [dict(zip(names, combination, strict=True))
                          for combination in itertools.product(*(grid[n] for n in names))]
    elif isinstance(grid, Sequence) and not isinstance(grid, str | bytes):
        if len(grid) == 0:
            raise ValueError("grid is empty: give at least one configuration")
        configurations = []
        for position, configuration in enumerate(grid):
            if not isinstance(configuration, Mapping):
                raise TypeError(f"grid[{position}] must be a mapping of parameters, got "
                                f"{configuration!r}")
            configurations.append(dict(configuration))
    else:
        raise TypeError(f"grid must be a mapping of name → values or a list of mappings, got "
                        f"{grid!r}")
    _check_no_repeats(configurations)
    return configurations


def _check_no_repeats(configurations: list[dict[str, Any]]) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for configuration in configurations:
        try:
            key = cache_key(configuration)  # so 0.9 and 0.9000000000000001 count as one
        except TypeError:
            key = repr(sorted(configuration.items(), key=lambda item: item[0]))
        if key in seen:
            raise ValueError(f"grid repeats the configuration {configuration} (same as "
                             f"{seen[key]}); use seeds= for repetitions")
        seen[key] = configuration


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """``seeds`` as a list of Python ints; raise for an empty list, a non-integer or a repeat."""
    if isinstance(seeds, str | bytes | Integral) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"seeds must be a list of whole numbers, got {seeds!r}")
    seed_list = list(seeds)
    if not seed_list:
        raise ValueError("seeds is empty: give at least one seed")
    for seed in seed_list:
        if isinstance(seed, bool | np.bool_) or not isinstance(seed, Integral):
            raise ValueError(f"seeds must be whole numbers, got {seed!r}")
    seed_list = [int(seed) for seed in seed_list]
    repeated = sorted({seed for seed in seed_list if seed_list.count(seed) > 1})
    if repeated:
        raise ValueError(f"seeds repeat {repeated}: each seed should appear once")
    return seed_list


def check_parameter_names(
    run: Callable[..., Any],
    configurations: list[dict[str, Any]],
    fixed: Mapping[str, Any],
    *,
    allowed: Collection[str] | None = None,
) -> list[str]:
    """The grid's parameter names (column order); raise if ``run`` cannot take them.

    Raises:
        ValueError: a name ``run`` does not accept (or not in ``allowed``), a name in both grid
            and ``fixed``, ``seed`` given as a parameter, ``run`` not accepting ``seed``, or a
            required parameter of ``run`` that nothing supplies.
    """
    names: list[str] = []
    for configuration in configurations:
        names.extend(name for name in configuration if name not in names)
    for name in fixed:
        if not isinstance(name, str):
            raise TypeError(f"fixed parameter names must be strings, got {name!r}")
    if "seed" in names or "seed" in fixed:
        raise ValueError("'seed' cannot be a grid or fixed parameter: pass seeds=[...] instead")
    both = sorted(set(names) & set(fixed))
    if both:
        raise ValueError(f"parameter(s) {both} appear both in the grid and in fixed=")

    try:
        signature = inspect.signature(run)
    except (TypeError, ValueError):
        signature = None
    parameters = {} if signature is None else {
        p.name: p for p in signature.parameters.values()
        if p.kind not in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_any = signature is None or any(
        p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    if allowed is not None:
        accepted = set(allowed) | {"seed"}
    elif takes_any:
        accepted = None
    else:
        accepted = set(parameters)
    title = getattr(run, "__qualname__", repr(run))
    if accepted is not None:
        if "seed" not in accepted:
            raise ValueError(f"{title}() must accept a 'seed' keyword argument")
        for name in [*names, *fixed]:
            if name not in accepted:
                raise ValueError(
                    f"unknown parameter {name!r}: {title}() accepts {sorted(accepted - {'seed'})}"
                )
    if signature is not None:
        for configuration in configurations:
            given = {*configuration, *fixed, "seed"}
            missing = [n for n, p in parameters.items()
                       if p.default is p.empty and n not in given]
            if missing:
                raise ValueError(f"{title}() needs {missing}, which neither the configuration "
                                 f"{configuration} nor fixed= gives")
    return names


def check_configurations(
    configurations: list[dict[str, Any]],
    fixed: Mapping[str, Any],
    *,
    num_samples: int | None = None,
    validate: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Built-in checks for ``momentum``, ``lr`` and ``batch_size``, then ``validate``.

    ``momentum`` must lie in [0, 1), ``lr`` be a finite number > 0, ``batch_size`` a whole
    number ≥ 1 and, when ``num_samples`` is given, at most ``num_samples``.

    Raises:
        ValueError: naming the configuration and the bad value.
    """
    if num_samples is not None:
        num_samples = check_positive_int(num_samples, name="num_samples")
    for configuration in configurations:
        params = {**fixed, **configuration}
        try:
            if "momentum" in params:
                check_momentum(params["momentum"])
            if "lr" in params:
                check_lr(params["lr"])
            if "batch_size" in params:
                if num_samples is None:
                    check_positive_int(params["batch_size"], name="batch_size")
                else:
                    check_batch_size(params["batch_size"], num_samples)
            if validate is not None:
                validate(dict(params))
        except (ValueError, TypeError) as error:
            kind = ValueError if isinstance(error, ValueError) else TypeError
            raise kind(f"bad configuration {configuration}: {error}") from error


def _tidy_scalar(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, torch.Tensor | np.ndarray | np.generic) and np.ndim(value) == 0:
        return _tidy_scalar(name, value.item())
    raise TypeError(f"result {name!r} is a {type(value).__name__} ({value!r:.80}); return "
                    "numbers, strings, booleans or short 1-D lists of them")


def tidy_result(result: Any) -> dict[str, Any]:
    """``result`` as a plain dict of Python scalars and lists, ready for a DataFrame and a pickle.

    0-d tensors/arrays become numbers, 1-D tensors/arrays/lists become lists; NaN and inf are
    kept (a diverged run is a result).

    Raises:
        TypeError: if ``result`` is not a mapping with string keys, or a value is not a scalar
            or a 1-D list of scalars.
    """
    if not isinstance(result, Mapping):
        raise TypeError(f"the run function must return a mapping of names to values, got "
                        f"{type(result).__name__}")
    tidy: dict[str, Any] = {}
    for name, value in result.items():
        if not isinstance(name, str):
            raise TypeError(f"result names must be strings, got {name!r}")
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = value.tolist()
        if isinstance(value, list | tuple):
            tidy[name] = [_tidy_scalar(f"{name}[{i}]", item) for i, item in enumerate(value)]
        else:
            tidy[name] = _tidy_scalar(name, value)
    return tidy
