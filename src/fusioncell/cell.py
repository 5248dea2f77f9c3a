"""A cell on disk: its data directory, database and log, opened or created in one place for the CLI and
the server."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from fusioncell.clock import Clock, SystemClock
from fusioncell.config import CellConfig, DataPaths
from fusioncell.db import Database, sqlite_url
from fusioncell.errors import ConfigError
from fusioncell.identity.auth import KeyEncryptionKey
from fusioncell.record import signing
from fusioncell.record.sequencer import Log


@dataclass
class CellHandle:
    paths: DataPaths
    db: Database
    log: Log
    _kek: KeyEncryptionKey | None = None

    @property
    def kek(self) -> KeyEncryptionKey:
        """The key-encryption key for custodial keys and TOTP secrets (DATA/kek.key, 0600)."""
        if self._kek is None:
            self._kek = KeyEncryptionKey.load_or_create(self.paths.kek)
        return self._kek

    def close(self) -> None:
        self.db.dispose()


def _db_url(paths: DataPaths, override: str | None) -> str:
    if override:
        return override
    if paths.db_url_file.exists():
        return paths.db_url_file.read_text().strip()
    return sqlite_url(paths.database)


def init_cell(root: Path, *, config: CellConfig, config_path: Path, db_url: str | None = None,
              clock: Clock | None = None) -> CellHandle:
    """Create the cell: key (0600), database with the schema, entry 0 and its signed tree head."""
    from fusioncell.identity import service as identity_service

    paths = DataPaths(root)
    if paths.cell_key.exists():
        raise ConfigError(f"{root} already holds a cell (found {paths.cell_key}); choose an empty --dir")
    root.mkdir(parents=True, exist_ok=True)
    url = db_url or sqlite_url(paths.database)
    db = Database(url)
    db.migrate()
    with db.read() as session:
        from sqlalchemy import func, select

        from fusioncell.record.models import Entry

        if session.execute(select(func.count()).select_from(Entry)).scalar_one():
            raise ConfigError("that database already holds a log; give an empty database with --db")
    key = signing.generate()
    signing.save_key(key, paths.cell_key)
    if db_url:
        paths.db_url_file.write_text(db_url + "\n")
    shutil.copyfile(config_path, root / "cell.toml")
    log = Log(clock=clock or SystemClock(), cell_id=config.cell.id, cell_key=key)
    with log.transaction(db) as session:
        identity_service.create_cell(session, log=log, config=config)
    return CellHandle(paths, db, log)


def open_cell(root: Path, *, db_url: str | None = None, clock: Clock | None = None,
              with_key: bool = True, upgrade: bool = False) -> CellHandle:
    """The cell in root. upgrade: first bring its database schema to this version's (what `serve` does; the
    other commands read and write the schema as they find it)."""
    paths = DataPaths(root)
    if not paths.cell_key.exists() and not db_url:
        raise ConfigError(f"no cell in {root}; create one with: fusioncell init --dir {root}")
    db = Database(_db_url(paths, db_url))
    if upgrade:
        db.migrate()
    key = signing.load_key(paths.cell_key) if with_key and paths.cell_key.exists() else None
    from sqlalchemy import select

    from fusioncell.identity.models import Cell

    with db.read() as session:
        cell_id = session.execute(select(Cell.id)).scalar_one_or_none()
    if cell_id is None:
        raise ConfigError(f"the database of {root} holds no cell (no genesis entry)")
    return CellHandle(paths, db, Log(clock=clock or SystemClock(), cell_id=cell_id, cell_key=key))
