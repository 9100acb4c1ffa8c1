"""Camera profiles: stored per camera and ISO, checked, picked per photo by `denoise`, exported and imported."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import make_dng, run_cli, tiny_model
from denoise_cli.errors import ConfigError, CorruptWeightsError, DenoiseError, WeightsError
from denoise_cli.io import Camera, read_image
from denoise_cli.registry.checkpoint import save_model
from denoise_cli.registry.profiles import add_profile, choose, get_profile, import_profile, list_profiles, remove_profile


def _exif_jpeg(path, make=None, model=None, iso=None, seed=0):
    exif = Image.Exif()
    if make:
        exif[0x010F], exif[0x0110] = make, model
    if iso:
        exif.get_ifd(0x8769)[0x8827] = iso
    px = (np.random.default_rng(seed).random((24, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(px).save(path, "JPEG", **({"exif": exif.tobytes()} if make or iso else {}))
    return path


def _model(tmp_path, seed=0):
    path = tmp_path / f"m{seed}.safetensors"
    save_model(tiny_model(seed=seed), path)
    return path


def test_photos_name_their_camera_and_iso(tmp_path):
    photo = read_image(_exif_jpeg(tmp_path / "a.jpg", "Canon", "Canon EOS 80D", 3200))
    assert photo.camera == Camera("Canon", "Canon EOS 80D", 3200.0) and photo.camera.name == "Canon EOS 80D"
    assert Camera("NIKON CORPORATION", "D800").name == "NIKON CORPORATION D800"
    assert not read_image(_exif_jpeg(tmp_path / "b.jpg")).camera.known
    raw = read_image(make_dng(tmp_path / "r.dng"))
    assert raw.camera.name == "denoise-cli test camera"


def test_the_profile_of_the_same_camera_with_the_nearest_iso_within_a_factor_2(tmp_path):
    folder = tmp_path / "profiles"
    model = _model(tmp_path)
    low = add_profile(model, name="cam-a-low", camera="Cam A", isos=[800], folder=folder)
    high = add_profile(model, name="cam-a-high", camera="Cam A", isos=[3200], folder=folder)
    other = add_profile(model, name="cam-b", camera="Cam B", isos=[1600], folder=folder)
    profiles = list_profiles(folder)
    assert [p.name for p in profiles] == ["cam-a-high", "cam-a-low", "cam-b"]
    pick = lambda cam, iso: getattr(choose(profiles, Camera(None, cam, iso)), "name", None)  # noqa: E731
    assert pick("Cam A", 1000) == low.name and pick("Cam A", 2500) == high.name and pick("cam  a", 1400) == low.name
    assert pick("Cam A", 12800) is None and pick("Cam B", 800) == other.name and pick("Cam B", 799) is None
    assert pick("Cam C", 800) is None and choose(profiles, Camera()) is None
    assert pick("Cam B", None) == other.name  # no ISO recorded: the camera's profile


def test_profiles_are_checked_and_foreign_files_refused(tmp_path):
    folder = tmp_path / "profiles"
    p = add_profile(_model(tmp_path), name="cam", camera="Cam", isos=[100], sigma_mid=[3.0, 2.5, 3.5], folder=folder)
    assert get_profile("cam", folder).sigma_mid == [3.0, 2.5, 3.5] and len(p.sha256) == 64
    with pytest.raises(ConfigError, match="exists"):
        add_profile(_model(tmp_path), name="cam", camera="Cam", isos=[100], folder=folder)
    with pytest.raises(ConfigError, match="name"):
        add_profile(_model(tmp_path), name="../evil", camera="Cam", isos=[], folder=folder)
    with pytest.raises(ConfigError, match="camera"):
        add_profile(_model(tmp_path), name="nocam", camera=None, isos=[], folder=folder)
    plain = _model(tmp_path, seed=1)  # a model, but not a profile
    with pytest.raises(WeightsError, match="not a denoise-cli profile"):
        import_profile(plain, folder=folder)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\0" * 64)
    with pytest.raises(DenoiseError, match="junk.safetensors"):
        import_profile(junk, folder=folder)
    copy = import_profile(p.path, name="cam-copy", folder=folder)
    assert copy.camera == "Cam" and copy.name == "cam-copy"
    p.path.write_bytes(p.path.read_bytes()[:-4] + b"oops")  # changed after it was stored
    with pytest.raises(CorruptWeightsError):
        get_profile("cam", folder)
    remove_profile("cam", folder)
    assert [q.name for q in list_profiles(folder)] == ["cam-copy"]


def test_denoise_picks_each_photos_profile_in_one_mixed_batch(tmp_path):
    env = {"DENOISE_CLI_PROFILES": str(tmp_path / "profiles")}
    src = tmp_path / "in"
    src.mkdir()
    _exif_jpeg(src / "a_low.jpg", "Maker", "Cam A", 800)
    _exif_jpeg(src / "a_high.jpg", "Maker", "Cam A", 3200, seed=1)
    _exif_jpeg(src / "b.jpg", "Other", "Cam B", 1600, seed=2)
    _exif_jpeg(src / "plain.jpg", seed=3)
    make_dng(src / "raw.dng")
    model = _model(tmp_path)
    for name, camera, iso in (("a-low", "Maker Cam A", "800"), ("a-high", "Maker Cam A", "3200"),
                              ("raw-cam", "denoise-cli test camera", "100")):
        r = run_cli("profiles", "add", str(model), "--name", name, "--camera", camera, "--iso", iso, env=env)
        assert r.returncode == 0, r.stderr
    r = run_cli("profiles", "add", str(model), env=env)  # a bare model file: no camera known
    assert r.returncode == 2 and b"--camera" in r.stderr
    listed = json.loads(run_cli("profiles", "list", "--json", env=env).stdout)
    assert [p["name"] for p in listed] == ["a-high", "a-low", "raw-cam"]
    r = run_cli("denoise", str(src), "-o", str(tmp_path / "out"), "--json", env=env)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    picked = {res["source"].rsplit("/", 1)[1]: res["weights"] for res in summary["results"]}
    assert picked["a_low.jpg"].startswith("profile a-low") and picked["a_high.jpg"].startswith("profile a-high")
    assert picked["raw.dng"].startswith("profile raw-cam")
    assert picked["b.jpg"] == "default weights (no profile for Other Cam B at ISO 1600)"
    assert picked["plain.jpg"] == "default weights (no camera in its EXIF)"
    assert summary["weights"] == "auto" and len(list((tmp_path / "out").iterdir())) == 5
    r = run_cli("denoise", str(src / "plain.jpg"), "-o", str(tmp_path / "out2"), env=env)
    assert b"denoised with default weights (no camera in its EXIF)" in r.stderr  # the notice on the terminal


def test_export_then_import_and_remove_through_the_cli(tmp_path):
    env = {"DENOISE_CLI_PROFILES": str(tmp_path / "profiles")}
    assert run_cli("profiles", "add", str(_model(tmp_path)), "--name", "cam", "--camera", "Cam", "--iso", "400",
                   env=env).returncode == 0
    r = run_cli("profiles", "export", "cam", str(tmp_path / "hub"), env=env)
    assert r.returncode == 0, r.stderr
    assert {"model.safetensors", "README.md", "entry.toml", "config.json"} <= {p.name for p in (tmp_path / "hub").iterdir()}
    assert "camera profile for Cam" in (tmp_path / "hub" / "README.md").read_text()
    assert run_cli("profiles", "remove", "cam", env=env).returncode == 0
    r = run_cli("profiles", "import", str(tmp_path / "hub" / "model.safetensors"), env=env)
    assert r.returncode == 0 and b"Cam" in r.stderr, r.stderr
    shown = json.loads(run_cli("profiles", "show", "cam", env=env).stdout)
    assert shown["camera"] == "Cam" and shown["isos"] == [400.0]
    assert run_cli("profiles", "show", "nope", env=env).returncode == 2
