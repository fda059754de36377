"""The scenario catalogue shipped with faultlab: YAML files beside this module.

``names()`` lists them, ``catalogue_path(name)`` finds one, and :func:`sim.load_scenario` accepts a
catalogue name wherever it accepts a file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _folder() -> Path:
    return Path(str(resources.files(__name__)))


def names() -> list[str]:
    """The catalogue's scenario names, sorted."""
    return sorted(p.stem for p in _folder().glob("*.yaml"))


def catalogue_path(name: str) -> Path | None:
    """The file of catalogue scenario ``name``, or ``None`` when there is none."""
    path = _folder() / f"{name}.yaml"
    return path if path.is_file() else None
