"""Which model denoises each photo: with `--weights auto`, the camera profile that fits the photo's camera and ISO,
else the default; loaded once each and kept for the rest of the batch."""

from __future__ import annotations

from typing import Callable

from ..io import Photo
from ..registry.profiles import Profile, choose
from .denoiser import Denoiser


class ModelChoice:
    """``pick(photo)`` → (the Denoiser for it, what was chosen and why, for the user)."""

    def __init__(self, load: Callable[[str | None], Denoiser], profiles: list[Profile]) -> None:
        self.load, self.profiles = load, profiles
        self.loaded: dict[str | None, Denoiser] = {}

    def pick(self, photo: Photo) -> tuple[Denoiser, str]:
        camera = photo.camera
        profile = choose(self.profiles, camera, raw=False)
        key = str(profile.path) if profile else None
        if key not in self.loaded:
            self.loaded[key] = self.load(key)
        if profile:
            iso = f", ISO {camera.iso:g}" if camera.iso else ""
            return self.loaded[key], f"profile {profile.name} ({camera.name}{iso})"
        why = f"no profile for {camera.name}" + (f" at ISO {camera.iso:g}" if camera.iso else "") if camera.known \
            else "no camera in its EXIF"
        return self.loaded[key], f"default weights ({why})"

    @property
    def device(self):
        """The device of the models loaded so far (all share one)."""
        return next(iter(self.loaded.values())).device if self.loaded else None
