"""Make the example image shipped with the package: a drawn scene through a simulated camera.

A drawn scene (no dataset image is copied, and no redistributable real noisy photo is at hand) put through the
package's camera pipeline at ISO 3200 — mosaicked, Poisson–Gaussian sensor noise, demosaicked and gamma-encoded, so
its noise is spatially and cross-channel correlated like a camera's — and saved as 8-bit PNG, so that the default
colour model (made for camera photos) suits it.

    python -m benchmarks.make_example   # writes denoise_cli/examples/noisy.png and clean.png
"""

from pathlib import Path

import cv2
import numpy as np

from denoise_cli.io import Photo, write_image
from denoise_cli.noise.synthetic import add_noise, image_rng, quantize

OUT = Path(__file__).resolve().parents[1] / "denoise_cli" / "examples"


def scene(h: int = 256, w: int = 384) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.35 + 0.4 * y / h, 0.55 + 0.3 * y / h, 0.85 - 0.1 * x / w], axis=2)  # sky
    img = np.ascontiguousarray(np.round(img * 255).astype(np.uint8))  # OpenCV draws text on 8-bit only
    cv2.circle(img, (300, 70), 38, (255, 217, 89), -1, cv2.LINE_AA)  # sun
    pts = np.array([[0, 200], [90, 120], [170, 190], [260, 110], [384, 210], [384, 256], [0, 256]], np.int32)
    cv2.fillPoly(img, [pts], (64, 115, 56), cv2.LINE_AA)  # hills
    for i in range(12):  # a fence: fine vertical detail
        cv2.rectangle(img, (20 + 30 * i, 205), (26 + 30 * i, 250), (140, 89, 51), -1)
    cv2.line(img, (10, 215), (380, 215), (140, 89, 51), 3, cv2.LINE_AA)
    cv2.putText(img, "denoise-cli", (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (255, 255, 255), 3, cv2.LINE_AA)
    return img.astype(np.float32) / 255


if __name__ == "__main__":
    clean = quantize(scene())
    noisy = quantize(add_noise(clean, "camera:3200", image_rng(0, "noisy.png")))
    write_image(Photo(clean), OUT / "clean.png", overwrite=True)
    write_image(Photo(noisy), OUT / "noisy.png", overwrite=True)
    print(f"wrote {OUT}/noisy.png and clean.png")
