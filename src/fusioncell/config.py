"""The cell's configuration (cell.toml) and its data directory."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fusioncell.errors import ConfigError

DEFAULT_DIR = "./fusioncell-data"
DEMO_CONFIG = Path(__file__).parent / "demo" / "cell.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartyConfig(_Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9_-]{0,31}$")
    role: Literal["party", "supervisor", "observer"] = "party"
    names: dict[str, str] = Field(min_length=1)
    languages: list[str] = Field(min_length=1)


class CellSection(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)


class CellConfig(_Strict):
    cell: CellSection
    party: list[PartyConfig] = Field(min_length=2)
    settings: dict[str, object] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_parties(self) -> CellConfig:
        ids = [p.id for p in self.party]
        if len(set(ids)) != len(ids):
            raise ValueError(f"party ids must be unique, got {ids}")
        if "CELL" in ids:
            raise ValueError("CELL is reserved for the cell itself; choose another party id")
        if not any(p.role == "party" for p in self.party):
            raise ValueError("a cell needs at least one party with role = \"party\"")
        return self


def load_config(path: Path) -> CellConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no cell configuration at {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return CellConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


def data_dir(value: str | Path | None) -> Path:
    return Path(value or os.environ.get("FUSIONCELL_DIR") or DEFAULT_DIR)


class DataPaths:
    """Where a cell keeps its files: the cell key (mode 0600), the SQLite database, the database URL."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cell_key = root / "cell.key"
        self.database = root / "fusioncell.db"
        self.db_url_file = root / "database.url"
        self.kek = root / "kek.key"
