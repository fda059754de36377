"""The JSON Schema of the scenario format, for editors that validate YAML while typing.

``scenarios/schema.json`` is generated from :class:`sim.scenario.Scenario` (validation mode, field
aliases such as ``from``), never written by hand. Regenerate it after changing a model::

    python -m sim.schema

The schema is looser than the loader: unit strings (``"512Mi"``) are accepted as any string, and
cross-field checks (call targets, cycles, placement fit, variant overlays) exist only in
:func:`sim.scenario.load_scenario`.
"""

from __future__ import annotations

import json
from pathlib import Path

from sim.scenario import Scenario

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "scenarios" / "schema.json"
"""Where the generated schema lives in the source tree."""


def schema_text() -> str:
    """The scenario JSON Schema as pretty JSON with sorted keys and a trailing newline."""
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schema(path: Path | str = SCHEMA_PATH) -> Path:
    """Write the scenario JSON Schema to ``path`` (default ``scenarios/schema.json``)."""
    target = Path(path)
    target.write_text(schema_text(), encoding="utf-8")
    return target


def main() -> None:
    """Regenerate ``scenarios/schema.json`` and say where it went."""
    print(f"wrote {write_schema()}")


if __name__ == "__main__":
    main()
