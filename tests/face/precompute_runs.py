"""Module-level run functions for the precompute tests (worker processes import them)."""


def square_plus(*, x: float, offset: int = 0) -> dict[str, float]:
    """A deterministic stand-in for a training run."""
    return {"value": x * x + offset}


def fails_at_two(*, x: float) -> float:
    """Raises for x == 2, to test that one failing point does not lose the others."""
    if x == 2:
        raise RuntimeError("diverged at x=2")
    return x


def sleepy(*, x: float, seed: int = 0) -> dict[str, float]:
    """Takes a minute: a precompute or grid still running when the test kills it. Says it has
    started with a file named by its pid in ``$EDUTOOLS_TEST_STARTED``."""
    import os
    import time
    from pathlib import Path

    Path(os.environ["EDUTOOLS_TEST_STARTED"], str(os.getpid())).touch()
    time.sleep(60)
    return {"value": x}
