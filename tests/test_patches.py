"""Training patches: crop sizes, and the pool that draws several folders equally often."""

import numpy as np

from denoise_cli.training.patches import ImagePool, random_patches


def test_pool_weighs_folders_equally_whatever_their_size():
    small = [np.zeros((8, 8, 1), np.float32)]
    large = [np.ones((8, 8, 1), np.float32)] * 3
    pool = ImagePool.from_folders([small, large])
    assert np.allclose(pool.p, [1 / 2, 1 / 6, 1 / 6, 1 / 6]) and len(pool.images) == 4
    crops = random_patches(pool, 4, 400, np.random.default_rng(0))
    share = float(crops.mean(dim=(1, 2, 3)).mean())  # fraction drawn from `large`; uniform over images: 0.75
    assert 0.43 < share < 0.57, share


def test_crops_have_the_asked_size_and_tiny_images_are_padded():
    images = [np.random.default_rng(1).random((10, 12, 3)).astype(np.float32)]
    assert random_patches(images, 8, 5, np.random.default_rng(0)).shape == (5, 3, 8, 8)
    assert random_patches(images, 16, 2, np.random.default_rng(0)).shape == (2, 3, 16, 16)
