"""Where `render` puts a stack's files: never over, and never deleting, a file it did not write.

`<out>/<stack>/.rendered` lists, one name a line, the files the last render wrote there. A new
render removes only the stale ones listed (what it wrote before and writes no more), and leaves
everything else in the folder alone. It refuses a folder without that list that already holds a
file of a name it would write, and a file of such a name that the list does not claim: those are
someone else's.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from driver.settings import DriverError

MANIFEST = ".rendered"


@dataclass(frozen=True)
class Placement:
    """One stack's files, checked against its folder: what to copy in and what to remove."""

    scratch: Path
    folder: Path
    names: tuple[str, ...]
    stale: tuple[str, ...]


def _odd_name(name: str) -> bool:
    """A name render never writes: a path, a parent or the list itself."""
    return "/" in name or "\\" in name or name in (".", "..", MANIFEST)


def _listed(folder: Path) -> set[str] | None:
    """The names the manifest lists, or None without one; refused when it names anything but a file here."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return None
    names = {line for line in manifest.read_text(encoding="utf-8").splitlines() if line}
    odd = sorted(filter(_odd_name, names))
    if odd or not manifest.is_file():
        named = ", ".join(odd[:3]) or "nothing"
        raise DriverError(f"{manifest} is not a list render wrote (it names {named}): refusing to use it")
    return names


def plan(scratch: Path, folder: Path) -> Placement:
    """Check that the files in `scratch` may go to `folder`; nothing is written yet."""
    names = tuple(sorted(p.name for p in scratch.iterdir()))
    if folder.exists() and not folder.is_dir():
        raise DriverError(f"{folder} is not a folder: refusing to render into it")
    present, listed = _present(folder)
    _refuse_foreign(folder, sorted(set(names) & (present - (listed or set()))), listed is not None)
    stale = tuple(sorted(n for n in (listed or set()) - set(names) if (folder / n).is_file()))
    return Placement(scratch, folder, names, stale)


def _present(folder: Path) -> tuple[set[str], set[str] | None]:
    """What `folder` holds and what its list says render wrote there (nothing, no list, for a folder not yet made)."""
    if not folder.is_dir():
        return set(), None
    return {p.name for p in folder.iterdir()}, _listed(folder)


def _refuse_foreign(folder: Path, foreign: list[str], has_list: bool) -> None:
    """Never overwrite a file render did not write."""
    if not foreign:
        return
    why = "not in its .rendered list" if has_list else "and it has no .rendered list of what render wrote"
    raise DriverError(
        f"{folder} already holds {', '.join(foreign[:3])}{' and more' if len(foreign) > 3 else ''}, {why}: "
        "refusing to overwrite files render did not write (choose another --out, or move them)"
    )


def place(placements: Sequence[Placement]) -> None:
    """Write each stack's files, remove its stale ones, and list what it wrote."""
    for placement in placements:
        placement.folder.mkdir(parents=True, exist_ok=True)
        for name in placement.stale:
            (placement.folder / name).unlink()
        for name in placement.names:
            shutil.copyfile(placement.scratch / name, placement.folder / name)
        (placement.folder / MANIFEST).write_text("".join(f"{name}\n" for name in placement.names), encoding="utf-8")
