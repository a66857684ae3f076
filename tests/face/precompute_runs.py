"""Module-level run functions for the precompute tests (worker processes import them)."""


def square_plus(*, x: float, offset: int = 0) -> dict[str, float]:
    """A deterministic stand-in for a training run."""
    return {"value": x * x + offset}


def fails_at_two(*, x: float) -> float:
    """Raises for x == 2, to test that one failing point does not lose the others."""
    if x == 2:
        raise RuntimeError("diverged at x=2")
    return x
