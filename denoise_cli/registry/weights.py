"""The weights registry (weights.toml), Hugging Face Hub downloads, sha256 checks, embedded default.

``--weights`` takes a registry NAME, a local PATH (a .safetensors file or a folder holding
``model.safetensors``), or ``hf://owner/repo/file.safetensors[@revision]``. Hub files go through
huggingface_hub, so its cache, ``HF_HOME``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` apply.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from ..errors import CorruptWeightsError, WeightsError, WeightsUnavailableError

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # denoise_cli/: embedded weights and the installed weights.toml
REGISTRY_CANDIDATES = (PACKAGE_DIR / "weights.toml", PACKAGE_DIR.parent / "weights.toml")



@dataclass(frozen=True)
class WeightsEntry:
    """One registry entry: what the model is, where its file lives, how it was made and measured."""

    name: str
    sha256: str
    channels: int
    noise: str
    description: str = ""
    use: str = ""  # what it is for, in a photographer's words (weights list)
    size: int = 0
    embedded: str | None = None
    repo_id: str | None = None
    filename: str | None = None
    revision: str | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def on_hub(self) -> bool:
        return bool(self.repo_id and self.filename)


@dataclass(frozen=True)
class Registry:
    default: str
    entries: dict[str, WeightsEntry]
    default_gray: str | None = None  # used for gray images when no --weights is given
    default_raw: str | None = None  # denoises camera RAW files before demosaicking

    def get(self, name: str) -> WeightsEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise WeightsError(f"unknown weights {name!r}: not a file and not in the registry "
                               f"({', '.join(self.entries)}); see `denoise-cli weights list`") from None


def registry_path() -> Path:
    for p in REGISTRY_CANDIDATES:
        if p.exists():
            return p
    raise WeightsError("weights.toml not found beside the package; reinstall denoise-cli")


@lru_cache(maxsize=4)
def load_registry(path: Path | None = None) -> Registry:
    """Parse weights.toml (the installed copy, else the repository's); a malformed file is a WeightsError naming
    what is wrong."""
    path = path or registry_path()
    try:
        data = tomllib.loads(path.read_text())
        entries = {}
        for name, e in data.get("models", {}).items():
            src = e.get("source", {})
            entries[name] = WeightsEntry(
                name=name, sha256=str(e["sha256"]), channels=int(e["channels"]), noise=str(e["noise"]),
                description=e.get("description", ""), use=str(e.get("use", "")), size=int(e.get("size", 0)),
                embedded=src.get("embedded"), repo_id=src.get("repo_id"), filename=src.get("filename"),
                revision=src.get("revision"), training=e.get("training", {}), metrics=e.get("metrics", {}))
        registry = Registry(default=str(data["default"]), entries=entries, default_gray=data.get("default_gray"),
                            default_raw=data.get("default_raw"))
    except OSError as e:
        raise WeightsError(f"cannot read {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise WeightsError(f"{path} is not valid TOML ({e}); reinstall denoise-cli or fix the file") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing key {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
        raise WeightsError(f"{path} is malformed ({what}); reinstall denoise-cli or fix the file") from None
    for name in (registry.default, registry.default_gray, registry.default_raw):
        if name is not None and name not in entries:
            raise WeightsError(f"{path} names default {name!r}, which it does not define")
    return registry


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, entry: WeightsEntry) -> Path:
    """Return path if its sha256 matches the registry, else refuse it."""
    got = sha256_file(path)
    if got != entry.sha256:
        raise CorruptWeightsError(f"sha256 mismatch for {entry.name} ({path}): expected {entry.sha256[:12]}…, "
                           f"got {got[:12]}…; the file is corrupt or was tampered with — refusing it "
                           f"(download it again)")
    return path


def hub_download(repo_id: str, filename: str, revision: str | None, *, force: bool = False,
                 what: str | None = None) -> Path:
    """Fetch one file through huggingface_hub, turning its errors into one-line WeightsErrors. An unreachable Hub
    is found with one short connection attempt (huggingface_hub itself retries for about half a minute); the cache
    still serves files it holds."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)
    from huggingface_hub.utils import logging as hf_logging

    what = what or f"{repo_id}/{filename}"
    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    offline = bool(constants.HF_HUB_OFFLINE) or not reachable(endpoint)
    hf_logging.set_verbosity_error()  # its retry warnings would add lines; failures are reported below
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, force_download=force and not offline,
                                    endpoint=os.environ.get("HF_ENDPOINT") or None, local_files_only=offline))
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise WeightsUnavailableError(f"{what} is not in the Hugging Face cache and offline mode is on "
                                          f"(HF_HUB_OFFLINE); download it once online") from None
        raise WeightsUnavailableError(f"cannot reach the Hugging Face Hub at {endpoint} to fetch {what}; check the "
                                      f"network (or HF_ENDPOINT)") from None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
        raise WeightsError(f"{what} not found on the Hub ({repo_id}, {filename}, revision {revision or 'main'})") from None
    except HfHubHTTPError as e:
        raise WeightsError(f"Hub download of {what} failed: {str(e).splitlines()[0]}") from None


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host and port opens within ``timeout`` seconds."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def cached_path(entry: WeightsEntry) -> Path | None:
    """The local file for an entry if it is embedded or already in the Hub cache, else None."""
    if entry.embedded:
        return PACKAGE_DIR / entry.embedded
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(entry.repo_id, entry.filename, revision=entry.revision)
    return Path(hit) if isinstance(hit, str) else None


def fetch(entry: WeightsEntry, *, force: bool = False) -> Path:
    """A verified local file for a registry entry, downloading from the Hub if needed."""
    if entry.embedded:
        path = PACKAGE_DIR / entry.embedded
        if not path.exists():
            raise WeightsError(f"embedded weights {path} are missing; reinstall denoise-cli")
        return verify(path, entry)
    if not entry.on_hub:
        raise WeightsError(f"registry entry {entry.name} has neither an embedded file nor a Hub source")
    return verify(hub_download(entry.repo_id, entry.filename, entry.revision, force=force, what=entry.name), entry)


def resolve_default_gray() -> Path | None:
    """The verified file of the registry's gray default, if it names one."""
    reg = load_registry()
    return fetch(reg.get(reg.default_gray)) if reg.default_gray else None


def resolve_default_raw() -> Path | None:
    """The verified file of the registry's RAW default, if it names one."""
    reg = load_registry()
    return fetch(reg.get(reg.default_raw)) if reg.default_raw else None


def registry_rows() -> list[dict[str, Any]]:
    """One row per registry entry for listings: name, role, images and noise, size, where the file is, whether it
    is on this machine, and its measured scores as (test, PSNR) pairs."""
    reg = load_registry()
    rows = []
    for e in reg.entries.values():
        local = cached_path(e)
        rows.append({"name": e.name, "default": e.name == reg.default, "default_gray": e.name == reg.default_gray,
                     "default_raw": e.name == reg.default_raw,
                     "channels": e.channels, "noise": e.noise, "use": e.use, "size_mb": round(e.size / 1e6, 2),
                     "source": "embedded" if e.embedded else f"hf://{e.repo_id}",
                     "local": bool(local and local.exists()),
                     "scores": [(k, v["psnr"]) for k, v in e.metrics.items() if "psnr" in v]})
    return rows


def used_weights(spec: str | os.PathLike | None) -> dict[str, str | None]:
    """What a --weights value means, for summaries: the model for colour (and all images when given)
    and the gray default that the registry adds when no --weights is given."""
    if spec is not None:
        return {"weights": str(spec), "weights_gray": None}
    reg = load_registry()
    return {"weights": reg.default, "weights_gray": reg.default_gray}


def resolve(spec: str | os.PathLike | None) -> Path:
    """Turn a --weights value (None: the registry default) into a local, verified file."""
    if spec is None:
        reg = load_registry()
        return fetch(reg.get(reg.default))
    text = str(spec)
    if text.startswith("hf://"):
        body, _, revision = text[5:].partition("@")
        parts = body.split("/")
        if len(parts) < 3:
            raise WeightsError(f"bad Hub address {text!r}: use hf://owner/repo/file.safetensors[@revision]")
        return hub_download("/".join(parts[:2]), "/".join(parts[2:]), revision or None)
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "model.safetensors"
        if not path.exists():
            raise WeightsError(f"{spec} is a folder without model.safetensors")
        return path
    if path.exists():
        return path
    if os.sep in text or text.endswith(".safetensors"):
        raise WeightsError(f"weights file {text} not found")
    return fetch(load_registry().get(text))
