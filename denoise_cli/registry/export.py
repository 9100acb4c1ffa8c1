"""Export a trained model as a folder ready to upload to the Hugging Face Hub: the weights, a
config.json, the weights.toml entry and a model card (README.md) with its provenance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .checkpoint import load_model, read_metadata, save_model
from ..errors import UploadError, WeightsError
from .entry import file_fields, read_entry, write_entry


def export_model(model_dir: Path, dest: Path, *, half: bool = False, repo_id: str | None = None,
                 name: str | None = None, description: str | None = None) -> Path:
    """See :func:`_export`; a malformed entry.toml or an unwritable DEST is a WeightsError."""
    try:
        return _export(model_dir, dest, half=half, repo_id=repo_id, name=name, description=description)
    except (ValueError, OSError) as e:
        raise WeightsError(f"export to {dest} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _export(model_dir: Path, dest: Path, *, half: bool = False, repo_id: str | None = None, name: str | None = None,
            description: str | None = None) -> Path:
    """Copy MODEL_DIR/model.safetensors into DEST with a config, a model card and an entry.toml that
    describes the exported file (its own sha256, size and format; a Hub source when ``repo_id`` is
    known). ``half`` stores the weights as fp16 (half the size; inference upcasts, so results barely move)."""
    src = model_dir / "model.safetensors" if model_dir.is_dir() else model_dir
    if not src.exists():
        raise WeightsError(f"{model_dir} holds no model.safetensors")
    entry_file = src.parent / "entry.toml"
    found_name, info = read_entry(entry_file) if entry_file.exists() else (src.parent.name, {})
    name = name or found_name
    if description:
        info["description"] = description
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "model.safetensors"
    if half:
        save_model(load_model(src), out, half=True,
                   **{k: v for k, v in read_metadata(src).items() if k not in ("format_version", "arch", "config")})
    else:
        shutil.copyfile(src, out)
    meta = read_metadata(out)
    (dest / "config.json").write_text(json.dumps({"arch": meta.get("arch"), **json.loads(meta.get("config", "{}"))}, indent=2))
    info = {k: v for k, v in info.items() if k != "source"} | file_fields(out, half=half)
    if repo_id:
        info["source"] = {"repo_id": repo_id, "filename": out.name}
    write_entry(dest / "entry.toml", name, info)
    (dest / "README.md").write_text(model_card(name, info, repo_id=repo_id, half=half))
    return dest


def model_card(name: str, info: dict, *, repo_id: str | None = None, half: bool = False) -> str:
    """The Hub model card (README.md): what the model is, how to use it, its provenance and scores."""
    training = info.get("training", {})
    metrics = info.get("metrics", {})
    rows = "\n".join(f"| {k} | {v.get('psnr', '—')} | {v.get('ssim', '—')} |" for k, v in metrics.items()) or "| — | — | — |"
    address = f"hf://{repo_id}/model.safetensors" if repo_id else "hf://OWNER/REPO/model.safetensors@REVISION"
    measured_on = "Measured on the fp32 weights before the fp16 export.\n\n" if half and metrics else ""
    return f"""---
library_name: denoise-cli
tags: [image-denoising, unpaired-learning, mwcnn]
---
# {name}

{info.get('description', 'An MWCNN denoiser made with denoise-cli.')}

Use: `denoise-cli denoise photos/*.png --weights {address}`

sha256 of `model.safetensors`: `{info['sha256']}` ({info['format']}, {info['size']} bytes)

## Training
- method: {training.get('kind', '—')}
- command: `{training.get('command', '—')}`
- data: {training.get('data', '—')}
- hardware: {training.get('hardware', '—')}
- time: {training.get('time', '—')}

## Measured (denoise-cli eval; 8-bit noisy inputs, seed 0)

{measured_on}| test | PSNR (dB) | SSIM |
|---|---:|---:|
{rows}
"""


def pin_revision(dest: Path, revision: str) -> Path:
    """After an upload, pin DEST/entry.toml's Hub source to the commit, so the entry can go into
    weights.toml as it is (the uploaded copy cannot name the commit that holds it)."""
    name, info = read_entry(dest / "entry.toml")
    info["source"] = {**info.get("source", {}), "revision": revision}
    write_entry(dest / "entry.toml", name, info)
    return dest / "entry.toml"


def upload_folder(folder: Path, repo_id: str, *, revision: str | None = None) -> str:
    """Upload an exported folder as one commit with huggingface_hub (needs a token: `hf auth login`
    or HF_TOKEN); returns the commit id to pin in weights.toml."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    api = HfApi()
    ops = [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in sorted(Path(folder).iterdir())
           if p.is_file()]
    try:
        api.create_repo(repo_id, exist_ok=True)
        info = api.create_commit(repo_id, ops, commit_message="Upload denoise-cli model", revision=revision)
    except LocalTokenNotFoundError:
        raise WeightsError("uploading needs a Hugging Face token: `hf auth login`, or set HF_TOKEN") from None
    except (HfHubHTTPError, OSError, ValueError) as e:  # HTTP errors, no network, a malformed repo id
        raise UploadError(f"upload failed ({repo_id}): {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return info.oid
