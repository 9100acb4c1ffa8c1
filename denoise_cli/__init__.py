"""denoise-cli: unpaired learning of deep image denoising (Wu et al., ECCV 2020) for photographs."""

__version__ = "0.1.0"

from .api import denoise_image, load_denoiser  # noqa: E402
from .io import Photo, read_image, write_image  # noqa: E402

__all__ = ["__version__", "denoise_image", "load_denoiser", "Photo", "read_image", "write_image"]
