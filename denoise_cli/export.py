"""Export a trained model as a folder ready to upload to the Hugging Face Hub: the weights, a
config.json, the weights.toml entry and a model card (README.md) with its provenance."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

from .checkpoint import load_model, read_metadata, save_model
from .weights import WeightsError, sha256_file


def export_model(model_dir: Path, dest: Path, *, half: bool = False) -> Path:
    """Copy MODEL_DIR/model.safetensors and entry.toml into DEST with a config and model card;
    `half` stores the weights as fp16 (half the size; inference upcasts, so fp32 results barely move)."""
    src = model_dir / "model.safetensors" if model_dir.is_dir() else model_dir
    if not src.exists():
        raise WeightsError(f"{model_dir} holds no model.safetensors")
    entry_file = src.parent / "entry.toml"
    entry = tomllib.loads(entry_file.read_text()) if entry_file.exists() else {"models": {}}
    name, info = next(iter(entry["models"].items()), (src.parent.name, {}))
    dest.mkdir(parents=True, exist_ok=True)
    if half:
        save_model(load_model(src), dest / "model.safetensors", half=True,
                   **{k: v for k, v in read_metadata(src).items() if k not in ("format_version", "arch", "config")})
    else:
        shutil.copyfile(src, dest / "model.safetensors")
    meta = read_metadata(dest / "model.safetensors")
    (dest / "config.json").write_text(json.dumps({"arch": meta.get("arch"), **json.loads(meta.get("config", "{}"))}, indent=2))
    if entry_file.exists():
        shutil.copyfile(entry_file, dest / "entry.toml")
    training = info.get("training", {})
    metrics = info.get("metrics", {})
    rows = "\n".join(f"| {k} | {v.get('psnr', '—')} | {v.get('ssim', '—')} |" for k, v in metrics.items()) or "| — | — | — |"
    card = f"""---
library_name: denoise-cli
tags: [image-denoising, unpaired-learning, mwcnn]
---
# {name}

{info.get('description', 'An MWCNN denoiser made with denoise-cli.')}

Use: `denoise-cli denoise photos/*.png --weights hf://OWNER/REPO/model.safetensors@REVISION`

sha256 of `model.safetensors`: `{sha256_file(dest / 'model.safetensors')}`

## Training
- method: {training.get('kind', '—')}
- command: `{training.get('command', '—')}`
- data: {training.get('data', '—')}
- hardware: {training.get('hardware', '—')}
- time: {training.get('time', '—')}

## Measured (denoise-cli eval; 8-bit noisy inputs, seed 0)
| test | PSNR (dB) | SSIM |
|---|---:|---:|
{rows}
"""
    (dest / "README.md").write_text(card)
    return dest


def upload_folder(folder: Path, repo_id: str, *, revision: str | None = None) -> str:
    """Upload an exported folder as one commit with huggingface_hub (needs a token: `hf auth login`
    or HF_TOKEN); returns the commit id to pin in weights.toml."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    ops = [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in sorted(Path(folder).iterdir())
           if p.is_file()]
    info = api.create_commit(repo_id, ops, commit_message="Upload denoise-cli model", revision=revision)
    return info.oid
