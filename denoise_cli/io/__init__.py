"""Read and write photographs: 8/16-bit and floating-point PNG and TIFF, JPEG, gray/RGB/RGBA, camera RAW.

Pixels travel as H×W×C arrays (float32 in [0,1], or as decoded) with the alpha channel, bit depth, EXIF and ICC
profile kept beside them, so the output is the input with only the pixels changed. Every failure is an ImageError
whose message is one line fit for a user.
"""

from ..errors import ImageError
from .camera import Camera, same_camera
from .folders import list_images, read_named, read_rgb_folder
from .formats import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, RAW_SUFFIXES, WRITE_FORMATS
from .photo import Photo, to_channels
from .read import read_image
from .write import encode_image, output_format, write_bytes_atomic, write_image

__all__ = ["Camera", "same_camera", "ImageError", "Photo", "read_image", "write_image", "encode_image", "output_format",
           "write_bytes_atomic", "list_images", "read_named", "read_rgb_folder", "to_channels", "DEFAULT_MAX_PIXELS",
           "IMAGE_SUFFIXES", "RAW_SUFFIXES", "WRITE_FORMATS"]
