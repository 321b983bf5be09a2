"""bitspike's seeded streams in Python: the augmentation applies (dy, dx, flip) exactly as
`make_batch` does; the shuffle is a permutation that depends on (seed, epoch). That the streams
equal bitspike's is checked end to end in test_interop (a shuffled, and an augmented, step)."""

import unittest

import numpy as np

from bitspike_torch import rng
from bitspike_torch.train import augment


def make_batch_reference(image: np.ndarray, dy: int, dx: int, flip: bool) -> np.ndarray:
    """The pixel loop of src/data/batch.rs `make_batch` for one image [C, H, W]."""
    c, h, w = image.shape
    out = np.zeros_like(image)
    for y in range(h):
        for x in range(w):
            sx = (w - 1 - x if flip else x) + dx
            sy = y + dy
            if 0 <= sy < h and 0 <= sx < w:
                out[:, y, x] = image[:, sy, sx]
    return out


class Streams(unittest.TestCase):
    def test_augment_equals_the_pixel_loop(self):
        images = np.random.default_rng(0).integers(0, 256, (6, 3, 7, 9), dtype=np.uint8)
        shifts = [(-4, 3, True), (4, -4, False), (0, 0, True), (2, -1, True), (-3, 4, False),
                  (1, 1, False)]
        got = augment(images, shifts)
        for i, (dy, dx, flip) in enumerate(shifts):
            np.testing.assert_array_equal(got[i], make_batch_reference(images[i], dy, dx, flip))

    def test_shuffle_is_a_seeded_permutation(self):
        a = rng.epoch_order(1000, 7, 0, True)
        self.assertEqual(a, rng.epoch_order(1000, 7, 0, True))
        self.assertNotEqual(a, rng.epoch_order(1000, 7, 1, True))
        self.assertEqual(sorted(a), list(range(1000)))
        self.assertEqual(rng.epoch_order(5, 7, 3, False), [0, 1, 2, 3, 4])

    def test_augmentation_draws_shifts_in_range(self):
        draws = rng.augmentation(500, 3, 10)
        self.assertEqual({d for d, _, _ in draws}, set(range(-4, 5)))
        self.assertTrue(any(f for *_, f in draws) and not all(f for *_, f in draws))


if __name__ == "__main__":
    unittest.main()
