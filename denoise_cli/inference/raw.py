"""Camera RAW denoised before demosaicking: the sensor's Bayer planes go through a RAW model (four planes guided by the
noise level, or blind), are written back into the file's raw buffer and developed as today's RAW path develops
(camera white balance, 16-bit sRGB), so the user gets the same kind of file with the noise removed first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..io import Camera, Photo
from ..io.bayer import develop, open_raw, put_planes, read_planes
from ..noise.sensor import SensorNoise, estimate_sensor_noise, from_canonical, noise_guides, to_canonical
from ..registry.profiles import choose
from .denoiser import Denoiser

UNKNOWN_CAMERA = "unknown camera"  # what a RAW fit files photos without a camera name under


def camera_key(camera: Camera) -> tuple[str, float]:
    """How a RAW model's noise table names a file's camera and ISO (as a RAW fit filed it)."""
    return camera.name if camera.known else UNKNOWN_CAMERA, float(camera.iso or 0)


@dataclass
class RawDenoiser:
    """A RAW model (an MWCNN on 4 planes with 4 guide planes) bound to a device, and the noise of the cameras it
    knows: ``noise`` maps (camera name, ISO) to the sensor noise a RAW fit learned; other files are denoised blind."""

    denoiser: Denoiser
    noise: dict[tuple[str, float], SensorNoise] = field(default_factory=dict)

    def noise_for(self, camera: str, iso: float) -> SensorNoise | None:
        """The learned noise of this camera at this ISO, or at the nearest ISO it knows within two thirds of a stop
        (×1.6); None (blind) otherwise."""
        if (camera, iso) in self.noise:
            return self.noise[(camera, iso)]
        near = [(abs(np.log2(max(i, 1) / max(iso, 1))), n) for (c, i), n in self.noise.items() if c == camera]
        best = min(near, key=lambda t: t[0], default=None)
        return best[1] if best and best[0] <= np.log2(1.6) else None

    @property
    def device(self) -> torch.device:
        return self.denoiser.device

    def planes(self, planes: np.ndarray, noise: SensorNoise | None = None, on_tile=None) -> np.ndarray:
        """Denoise H×W×4 canonical planes (float32, 0 black, 1 white); ``noise`` None: blind."""
        y = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None]
        if noise is None:
            guides = torch.zeros_like(y)
        else:
            guides = noise_guides(y, torch.tensor([noise.a]), torch.tensor([noise.b]))
        inputs = torch.cat([y, guides], 1)[0].numpy().transpose(1, 2, 0)
        out = np.empty_like(planes, dtype=np.float32)
        self.denoiser.apply(inputs, out, on_tile)
        strength = self.denoiser.strength
        return out if strength == 1.0 else planes - strength * (planes - out)

    def develop_denoised(self, data: bytes, camera: tuple[str, float] | None = None, notices: list[str] | None = None,
                         on_tile=None, *, noise: SensorNoise | None = None, auto_bright: bool = True,
                         estimate: bool = False) -> np.ndarray:
        """A RAW file's bytes → its sensor data denoised and developed (H×W×3 uint16), with the noise learned for
        ``camera`` (name, ISO) or given as ``noise``, else (``estimate``) measured from the file itself, else blind.
        ImageError for files whose sensor is not a 2×2 Bayer one (io.read_image(sensor=True) keeps those out of the
        RAW way). ``auto_bright`` as in io.bayer.develop."""
        how = "given noise" if noise else "the noise learned for this camera and ISO"
        noise = noise or (self.noise_for(*camera) if camera else None)
        with open_raw(data) as raw:
            frame = read_planes(raw)
            planes = to_canonical(frame.planes, frame.cfa)
            if noise is None:
                how, noise = ("the noise measured from the file", estimate_sensor_noise([planes])) if estimate \
                    else ("blind", None)
            clean = self.planes(planes, noise, on_tile)
            frame.planes = from_canonical(clean, frame.cfa)
            put_planes(raw, frame)
            if notices is not None:
                notices.append(f"camera RAW denoised before demosaicking ({frame.cfa} Bayer planes, {how}), "
                               "then developed (camera white balance), written as 16-bit")
            return develop(raw, auto_bright)


class SensorJob:
    """One RAW photo's denoising with a RAW model, shaped like a Denoiser for the batch (``denoise(pixels, notices,
    on_tile)``): the pixels developed by today's path are replaced by the sensor data denoised and developed. (Files
    whose sensor the RAW model cannot read, X-Trans and others, keep no sensor data when read and never come here.)"""

    def __init__(self, raw: RawDenoiser, photo: Photo) -> None:
        self.raw, self.photo = raw, photo
        self.device = raw.device

    def denoise(self, pixels: np.ndarray, notices: list[str] | None = None, on_tile=None) -> np.ndarray:
        out = self.raw.develop_denoised(self.photo.sensor, camera_key(self.photo.camera), notices, on_tile)
        if notices is not None:  # the reader's note on today's path no longer applies
            notices[:] = [n for n in notices if not n.startswith("camera RAW demosaiced")]
        return out if pixels.dtype == np.uint16 else out.astype(np.float32) / 65535


class RawFirst:
    """A model choice that sends camera RAW files (photos that kept their sensor data) to a RAW model — the RAW camera
    profile of the file's camera and ISO where there is one (``profiles``), else, with ``use_default``, the model
    ``name`` — and everything else to ``inner`` (a Denoiser or a per-camera ModelChoice). ``load(path or None)``
    loads a RAW model (None: ``name``); each is loaded once."""

    def __init__(self, inner, load: Callable[[str | None], RawDenoiser], name: str | None,
                 profiles: list | None = None, use_default: bool = True) -> None:
        self.inner, self.load, self.name, self.profiles, self.use_default = inner, load, name, profiles or [], use_default
        self.loaded: dict[str | None, RawDenoiser] = {}

    def pick(self, photo: Photo):
        profile = choose(self.profiles, photo.camera, raw=True) if photo.sensor is not None else None
        if profile is None and not (photo.sensor is not None and self.use_default):
            return self.inner.pick(photo)
        key = str(profile.path) if profile else None
        if key not in self.loaded:
            self.loaded[key] = self.load(key)
        return SensorJob(self.loaded[key], photo), f"RAW profile {profile.name}" if profile else \
            f"RAW model {self.name}"

    @property
    def device(self):
        """The device of the models loaded so far (all share one)."""
        return self.inner.device or (next(iter(self.loaded.values())).device if self.loaded else None)
