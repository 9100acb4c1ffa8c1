"""Property-based fuzzing of `denoise` (hypothesis, bounded in time): random bytes, damaged headers, names with markup
and control characters, and random flag values. Whatever comes in: no traceback, a non-zero exit on any failure, the
batch goes on to the good photo beside the bad one, no partial output file, and the inputs are never touched."""

from __future__ import annotations

import io
import math
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image
from typer.testing import CliRunner

from denoise_cli.cli import app

FUZZ = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SUFFIXES = [".png", ".jpg", ".tif", ".webp", ".bmp", ".gif", ".dng", ".nef"]


def _image_bytes(fmt: str, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


GOOD = _image_bytes("PNG")


def _run(args: list[str]):
    return CliRunner().invoke(app, ["denoise", *args, "--device", "cpu"], catch_exceptions=True)


def _check(folder: Path, out: Path, result, before: dict[str, bytes], good_name: str = "good.png") -> None:
    """The invariants every run must keep."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before  # inputs untouched
    if out.exists():
        assert not [p for p in out.rglob("*") if p.name.endswith(".part")]  # nothing half-written
        for p in out.rglob("*"):
            if p.is_file():
                with Image.open(p) as im:  # every output is a whole, readable image
                    im.load()
    if result.exit_code != 2:  # a usage error stops before any photo; otherwise the good photo is always done
        assert (out / good_name).exists()


def _folder(files: dict[str, bytes]) -> tuple[Path, Path, dict[str, bytes]]:
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    folder = root / "in"
    folder.mkdir()
    for name, data in {"good.png": GOOD, **files}.items():
        (folder / name).write_bytes(data)
    return folder, root / "out", {p.name: p.read_bytes() for p in folder.iterdir()}


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(data: bytes, suffix: str):
    folder, out, before = _folder({f"junk{suffix}": data})
    result = _run([str(folder), "-o", str(out)])
    _check(folder, out, result, before)
    assert result.exit_code == 1 or (out / f"junk{suffix}").exists() or suffix not in (".png", ".jpg", ".tif")


@FUZZ
@given(fmt=st.sampled_from(["PNG", "JPEG", "TIFF", "BMP"]), cut=st.integers(0, 400),
       flips=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), max_size=6))
def test_damaged_headers_and_truncation(fmt: str, cut: int, flips: list[tuple[int, int]]):
    data = bytearray(_image_bytes(fmt, 1))
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    data = bytes(data[: len(data) - cut] if cut else data)
    suffix = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "BMP": ".bmp"}[fmt]
    folder, out, before = _folder({f"bad{suffix}": data})
    _check(folder, out, _run([str(folder), "-o", str(out)]), before)


NAME_CHARS = st.sampled_from(list(string.ascii_letters + string.digits + "[]/\\{}()*?!$&;'\" ._-") +
                             ["\x1b", "\x07", "\t", "\u202e", "é", "✓", "[bold red]", "[/]", "[link=x]"])


@FUZZ
@given(stem=st.lists(NAME_CHARS, min_size=1, max_size=12).map("".join))
def test_names_with_markup_and_control_characters(stem: str):
    stem = stem.replace("/", "_").replace("\\", "_").strip()
    if stem in ("", ".", "..") or stem.startswith("."):
        stem = "x" + stem
    folder, out, before = _folder({f"{stem}.png": _image_bytes("PNG", 2)})
    result = _run([str(folder), "-o", str(out)])
    _check(folder, out, result, before)
    assert result.exit_code == 0 and (out / f"{stem}.png").exists()
    assert "\x1b" not in result.output and "\x07" not in result.output


FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 1.0, -1.0, 2.0]))


@FUZZ
@given(tile=st.one_of(st.none(), st.integers(-5, 5000)), overlap=st.one_of(st.none(), st.integers(-5, 2000)),
       strength=st.one_of(st.none(), FLOATS), max_pixels=st.one_of(st.none(), FLOATS),
       suffix=st.one_of(st.none(), st.lists(NAME_CHARS, max_size=4).map("".join)),
       fmt=st.one_of(st.none(), st.sampled_from(["png", "tif", "jpg", "gif", "PNG", ""])),
       ensemble=st.booleans(), shard=st.one_of(st.none(), st.sampled_from(["1/2", "2/2", "0/1", "3/2", "x", "1/1"])))
def test_flag_values(tile, overlap, strength, max_pixels, suffix, fmt, ensemble, shard):
    folder, out, before = _folder({})
    args = [str(folder), "-o", str(out)]
    for flag, value in (("--tile", tile), ("--overlap", overlap), ("--strength", strength),
                        ("--max-pixels", max_pixels), ("--suffix", suffix), ("--format", fmt), ("--shard", shard)):
        if value is not None:
            args += [flag, str(value)]
    if ensemble:
        args.append("--ensemble")
    result = _run(args)
    if shard == "2/2" and result.exit_code == 0:  # the one photo is in the first share: nothing to do in this one
        return
    name = None
    if result.exit_code == 0:
        ext = {"tif": "tif", "jpg": "jpg", "png": "png"}.get(fmt or "png", "png")
        name = f"good{suffix or ''}.{ext}"
    _check(folder, out, result, before, good_name=name or "good.png")
    if strength is not None and not (0 <= strength <= 1) or (max_pixels is not None and not (max_pixels > 0)):
        assert result.exit_code == 2
    if max_pixels is not None and math.isfinite(max_pixels) and 0 < max_pixels < 24 * 32 / 1e6:
        assert result.exit_code == 1  # the photo is over the limit: a per-file failure


@pytest.mark.parametrize("args", [["--tile", "-1"], ["--overlap", "-3"], ["--max-pixels", "nan"], ["--strength", "nan"]])
def test_bad_numbers_are_one_usage_error(args):
    folder, out, before = _folder({})
    result = _run([str(folder), "-o", str(out), *args])
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()
