"""Write the embedded 8×8 digits (src/gumbel_sinkhorn/data/digits.npz) from scikit-learn's copy.

The 1,797 images are the test set of the UCI "Optical Recognition of Handwritten Digits" data
(Alpaydin and Kaynak, 1998), 8×8 blocks of counts 0..16, as bundled with scikit-learn. Run once,
in any environment that has scikit-learn (the package itself does not need it):

    python scripts/make_digits.py
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parents[1] / "src" / "gumbel_sinkhorn" / "data" / "digits.npz"


def main() -> None:
    digits = load_digits()
    images = digits.images.astype(np.uint8)
    assert images.shape == (1797, 8, 8) and np.array_equal(images, digits.images)
    assert images.max() == 16
    np.savez_compressed(OUT, images=images, labels=digits.target.astype(np.uint8))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
