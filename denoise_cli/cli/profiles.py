"""`profiles add | list | show | remove | export | import`: adapted models stored per camera, which `denoise` picks by
itself for each photo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import Command, Group, flag, note_line, reports_errors, say, shown

app = typer.Typer(no_args_is_help=True, cls=Group,
                  help="Camera profiles: adapt once per camera, then `denoise` picks the right model for each photo.")

CameraOpt = Annotated[Optional[str], typer.Option(
    metavar='"MAKE MODEL"', help="The camera, for models whose photos had no EXIF (as the photos' EXIF would name it, "
                                 "e.g. \"Canon EOS 80D\").")]
IsoOpt = Annotated[Optional[list[float]], typer.Option(
    "--iso", metavar="ISO", help="ISO of the photos it learned from (repeat for several); with --camera.")]


def store(model: Path, name: str | None, camera: str | None, isos: list[float] | None, replace: bool = False):
    """Store an adapted model as a profile (api.store_profile), saying which camera when its photos named several."""
    from ..api import store_profile

    profile, cameras_seen = store_profile(model, name, camera, isos, replace)
    if cameras_seen > 1 and not camera:
        note_line(f"its photos came from {cameras_seen} cameras; the profile is for the most frequent, {profile.camera} "
                  "(give --camera to choose)")
    return profile


def iso_text(isos: list[float], none: str = "any ISO") -> str:
    """A profile's ISOs for a line of text ("100, 3200"), or ``none`` when it has none."""
    return ", ".join(f"{i:g}" for i in isos) or none


def _line(p) -> str:
    return f"{p.name}: {p.camera}, ISO {iso_text(p.isos)}"


@app.command("add", cls=Command)
@reports_errors()
def profiles_add(
    model: Annotated[Path, typer.Argument(metavar="RUN/model", show_default=False,
                                          help="An adapted model: a distill or adapt run's model folder.")],
    name: Annotated[Optional[str], typer.Option(metavar="NAME", help="Profile name \\[default: from the camera].")] = None,
    camera: CameraOpt = None,
    iso: IsoOpt = None,
    replace: Annotated[bool, flag("--replace", help="Replace a profile of that name.")] = False,
) -> None:
    """Store an adapted model as a camera profile (camera and ISOs from its photos' EXIF)."""
    p = store(model, name, camera, iso, replace)
    say(f"stored profile {_line(p)} in {p.path.parent}")


@app.command("list", cls=Command)
@reports_errors()
def profiles_list(as_json: Annotated[bool, flag("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Show the stored profiles: name, camera, what they denoise, ISOs, noise at mid-gray, date, size."""
    from rich.console import Console
    from rich.table import Table

    from ..registry.profiles import list_profiles, profiles_dir

    profiles = list_profiles()
    if as_json:
        print(json.dumps([p.to_dict() for p in profiles], indent=2))
        return
    if not profiles:
        say(f"no profiles yet (in {profiles_dir()}); make one with `denoise-cli adapt PHOTOS --run RUN --profile NAME`")
        return
    table = Table(title=f"denoise-cli profiles ({profiles_dir()})")
    for col in ("name", "camera", "for", "ISO", "noise σ at mid-gray", "made", "size"):
        table.add_column(col, no_wrap=col == "name")
    for p in profiles:
        table.add_row(shown(p.name), shown(p.camera or "—"), "RAW files" if p.raw else "photos", iso_text(p.isos, "any"),
                      " / ".join(f"{s:.1f}" for s in p.sigma_mid) or "—", p.created[:10], f"{p.size / 1e6:.1f} MB")
    Console().print(table)


@app.command("show", cls=Command)
@reports_errors()
def profiles_show(name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)]) -> None:
    """Everything a profile records (its file is checked against its sha256)."""
    from ..registry.profiles import get_profile

    print(json.dumps(get_profile(name).to_dict(), indent=2))


@app.command("remove", cls=Command)
@reports_errors()
def profiles_remove(name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)]) -> None:
    """Delete a profile."""
    from ..registry.profiles import remove_profile

    remove_profile(name)
    say(f"removed profile {name}")


@app.command("export", cls=Command)
@reports_errors()
def profiles_export(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)],
    dest: Annotated[Path, typer.Argument(metavar="DEST", show_default=False,
                                         help="Folder to write: the profile, a model card and entry.toml.")],
) -> None:
    """Write a folder ready for the Hugging Face Hub (as `weights export` does), holding the profile."""
    from ..registry.export import export_model
    from ..registry.profiles import get_profile

    p = get_profile(name)
    out = export_model(p.path, dest, name=p.name,
                       description=f"denoise-cli camera profile for {p.camera} (ISO "
                                   f"{iso_text(p.isos, 'any')}), made by `adapt`")
    say(f"exported {name} to {out}; `denoise-cli profiles import {out / 'model.safetensors'}` stores it again")


@app.command("import", cls=Command)
@reports_errors()
def profiles_import(
    source: Annotated[str, typer.Argument(metavar="FILE|hf://…", show_default=False,
                                          help="A profile file, or hf://owner/repo/file.safetensors[@revision].")],
    name: Annotated[Optional[str], typer.Option(metavar="NAME", help="Store it under another name.")] = None,
) -> None:
    """Store a profile made elsewhere (checked: it must be a denoise-cli profile that loads)."""
    from ..registry.profiles import import_profile
    from ..registry.weights import resolve

    p = import_profile(resolve(source), name=name)
    say(f"imported profile {_line(p)}")
