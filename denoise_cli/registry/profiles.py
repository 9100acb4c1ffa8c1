"""Camera profiles: adapted models stored once per camera, so `denoise` can pick the right one for each photo.

A profile is one self-describing safetensors file — the model with, in its metadata, the camera it was learned from,
the ISOs of those photos, the noise level the fit read at mid-gray, and when and how it was made — kept in the
user's data folder (platformdirs; ``DENOISE_CLI_PROFILES`` overrides it) next to an index of their sha256.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, CorruptWeightsError, WeightsError
from ..io import Camera, same_camera, write_bytes_atomic
from .checkpoint import load_model, read_metadata, save_model
from .weights import sha256_file

ENV = "DENOISE_CLI_PROFILES"
INDEX = "index.json"
ISO_FACTOR = 2.0  # a profile serves photos within this factor of one of its ISOs
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def profiles_dir() -> Path:
    """Where profiles live: $DENOISE_CLI_PROFILES, else the platform's user data folder."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    import platformdirs

    return Path(platformdirs.user_data_dir("denoise-cli")) / "profiles"


@dataclass
class Profile:
    """One stored profile, as its file's metadata describes it."""

    name: str
    path: Path
    camera: str | None
    isos: list[float] = field(default_factory=list)
    sigma_mid: list[float] = field(default_factory=list)
    created: str = ""
    made_by: str = ""
    sha256: str = ""
    size: int = 0
    raw: bool = False  # a RAW model (four Bayer planes), for camera RAW files; else a model of developed photos

    def serves(self, camera: Camera) -> float | None:
        """How far (in ISO octaves) the photo's ISO is from this profile's nearest, if it is this camera's profile
        and within ISO_FACTOR; 0 for a photo without ISO; None when it does not serve the photo."""
        if not same_camera(self.camera, camera.name):
            return None
        if camera.iso is None or not self.isos:
            return 0.0
        gap = min(abs(math.log2(camera.iso / iso)) for iso in self.isos if iso > 0)
        return gap if gap <= math.log2(ISO_FACTOR) + 1e-9 else None

    def to_dict(self) -> dict:
        return {**self.__dict__, "path": str(self.path)}


def _index(folder: Path) -> dict[str, dict]:
    path = folder / INDEX
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as e:
        raise WeightsError(f"the profile index {path} is unreadable ({e}); remove it to start again") from None


def _write_index(folder: Path, index: dict[str, dict]) -> None:
    write_bytes_atomic(folder / INDEX, json.dumps(index, indent=2, sort_keys=True).encode())


def _describe(name: str, path: Path, record: dict) -> Profile:
    meta = read_metadata(path)
    if meta.get("profile") != name:
        raise WeightsError(f"{path} is not the denoise-cli profile {name!r}")
    return Profile(name, path, meta.get("camera") or None, json.loads(meta.get("isos", "[]")),
                   json.loads(meta.get("sigma_mid", "[]")), meta.get("created", ""), meta.get("made_by", ""),
                   record.get("sha256", ""), path.stat().st_size, _is_raw(meta))


def _is_raw(meta: dict[str, str]) -> bool:
    """Whether a checkpoint's metadata describes a RAW model (four image channels)."""
    try:
        return int(json.loads(meta.get("config", "{}")).get("channels", 0)) == 4
    except (ValueError, TypeError, AttributeError):
        return False


def list_profiles(folder: Path | None = None) -> list[Profile]:
    """Every stored profile, by name."""
    folder = folder or profiles_dir()
    return [_describe(name, folder / rec["file"], rec) for name, rec in sorted(_index(folder).items())]


def get_profile(name: str, folder: Path | None = None) -> Profile:
    """A stored profile, its file checked against the recorded sha256."""
    folder = folder or profiles_dir()
    rec = _index(folder).get(name)
    if rec is None:
        known = ", ".join(_index(folder)) or "none yet"
        raise ConfigError(f"no profile named {name!r} (profiles: {known})")
    path = folder / rec["file"]
    if not path.exists() or sha256_file(path) != rec["sha256"]:
        raise CorruptWeightsError(f"profile {name}: {path} is missing or changed since it was stored (sha256)")
    return _describe(name, path, rec)


def add_profile(model: Path, *, name: str, camera: str | None, isos: list[float], sigma_mid: list[float] | None = None,
                made_by: str = "", folder: Path | None = None, replace: bool = False) -> Profile:
    """Store a model file as a profile; the model is checked (it must load) and rewritten with the profile's
    metadata."""
    if not NAME.match(name):
        raise ConfigError(f"profile name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    if not camera:
        raise ConfigError("a profile needs the camera it is for (none was found in the photos' EXIF)")
    folder = folder or profiles_dir()
    index = _index(folder)
    if name in index and not replace:
        raise ConfigError(f"a profile named {name!r} exists already")
    net = load_model(model)  # refuses a corrupt or foreign file before anything is stored
    meta = {k: v for k, v in read_metadata(model).items() if k not in ("format_version", "arch", "config")}
    meta.update(profile=name, camera=camera, isos=json.dumps(sorted(set(isos))),
                sigma_mid=json.dumps([round(s, 2) for s in sigma_mid or []]),
                created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), made_by=made_by)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    save_model(net, path, **meta)
    index[name] = {"file": path.name, "sha256": sha256_file(path)}
    _write_index(folder, index)
    return get_profile(name, folder)


def remove_profile(name: str, folder: Path | None = None) -> None:
    folder = folder or profiles_dir()
    index = _index(folder)
    if name not in index:
        raise ConfigError(f"no profile named {name!r}")
    (folder / index.pop(name)["file"]).unlink(missing_ok=True)
    _write_index(folder, index)


def import_profile(path: Path, *, name: str | None = None, folder: Path | None = None) -> Profile:
    """Store a profile file made elsewhere (e.g. by `profiles export`); it must be a loadable denoise-cli profile."""
    meta = read_metadata(path)  # a foreign or corrupt file fails here, in one line
    if not meta.get("profile") or not meta.get("camera"):
        raise WeightsError(f"{path} is not a denoise-cli profile (no profile or camera in its metadata)")
    load_model(path)
    folder = folder or profiles_dir()
    name = name or meta["profile"]
    index = _index(folder)
    if name in index:
        raise ConfigError(f"a profile named {name!r} exists already")
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{name}.safetensors"
    if name == meta["profile"]:
        shutil.copyfile(path, dest)
    else:  # renamed: the file's own name must say so
        save_model(load_model(path), dest, **{**{k: v for k, v in meta.items()
                                                 if k not in ("format_version", "arch", "config")}, "profile": name})
    index[name] = {"file": dest.name, "sha256": sha256_file(dest)}
    _write_index(folder, index)
    return get_profile(name, folder)


def choose(profiles: list[Profile], camera: Camera, *, raw: bool = False) -> Profile | None:
    """The profile for a photo: its camera's, with the nearest ISO within ISO_FACTOR, among the RAW models (``raw``,
    for a RAW file's sensor data) or the others; None when there is none."""
    fits = [(gap, p.name, p) for p in profiles if p.raw == raw and (gap := p.serves(camera)) is not None]
    return min(fits)[2] if fits else None
