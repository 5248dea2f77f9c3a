"""The `fusioncell` command."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from fusioncell.cell import CellHandle
from fusioncell.config import DEMO_CONFIG, DataPaths, data_dir, load_config
from fusioncell.errors import FusioncellError, VerificationFailed

app = typer.Typer(help="fusioncell: the joint coordination cell on a signed, append-only record.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
key_app = typer.Typer(help="Enrol, list and revoke signing keys.", no_args_is_help=True)
member_app = typer.Typer(help="Add, list and disable members; issue their API tokens.", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(member_app, name="member")
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

DirOption = Annotated[Optional[Path], typer.Option("--dir", help="Cell data directory [env FUSIONCELL_DIR].")]
DbOption = Annotated[Optional[str], typer.Option("--db", help="Database URL (default: SQLite in DATA).")]


def fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except VerificationFailed as exc:
        fail(f"verification FAILED at {exc.message}", 2)
    except (FusioncellError, PermissionError) as exc:
        fail(str(exc))


@contextmanager
def opened(dir: Path | None, db: str | None, *, with_key: bool = True) -> Iterator[CellHandle]:
    """The cell in DATA, closed afterwards; its errors become clear messages and a non-zero exit."""
    from fusioncell.cell import open_cell

    with errors():
        cell = open_cell(data_dir(dir), db_url=db, with_key=with_key)
        try:
            yield cell
        finally:
            cell.close()


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar, shown only for work big enough to take more than about a second."""
    if total < 20000 or not console.is_terminal:
        yield lambda _n: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@app.command()
def init(
    dir: DirOption = None,
    config: Annotated[Optional[Path], typer.Option(help="Cell configuration (cell.toml).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Create the demo cell and play the demo scenario.")] = False,
    db: DbOption = None,
) -> None:
    """Create a cell: its key, its database and entry 0 (cell.genesis)."""
    from fusioncell.cell import init_cell

    root = data_dir(dir)
    if config is None and not demo:
        fail("give --config cell.toml, or --demo for the demo cell")
    config_path = config or DEMO_CONFIG
    with errors():
        cell = init_cell(root, config=load_config(config_path), config_path=config_path, db_url=db)
        if demo:
            from fusioncell.demo.scenario import (
                play,
                play_hotline,
                play_incidents_and_disputes,
                play_zones_and_notices,
            )

            play(cell)
            play_hotline(cell)
            play_zones_and_notices(cell)
            play_incidents_and_disputes(cell)
        with cell.db.read() as session:
            size = cell.log.tree(session).size
        cell.close()
    out.print(f"cell created in {root} ({size} entries); key {DataPaths(root).cell_key} (mode 0600)")


@app.command()
def verify(
    bundle: Annotated[Optional[Path], typer.Argument(help="Export bundle to verify (else the database).")] = None,
    dir: DirOption = None,
    db: DbOption = None,
    workers: Annotated[int, typer.Option(help="Worker processes (0: one per core).")] = 0,
) -> None:
    """Verify every signature, body hash and the Merkle root against the signed tree heads."""
    from fusioncell.record.verify import BundleSource, DatabaseSource, verify_source

    with errors():
        if bundle is not None:
            if not bundle.exists():
                fail(f"no bundle at {bundle}")
            from fusioncell.record.proofs import is_proof_bundle

            if is_proof_bundle(bundle):
                return _verify_proof_bundle(bundle)
            source = BundleSource(bundle)
            trusted = source.cell_key()
        else:
            from fusioncell.cell import _db_url

            paths = DataPaths(data_dir(dir))
            if not db and not paths.database.exists() and not paths.db_url_file.exists():
                fail(f"no cell database in {paths.root}; give --dir or a bundle file")
            source = DatabaseSource(_db_url(paths, db))
            trusted = None
        total = source.count()
        with progress_bar("verifying", total) as advance:
            report = verify_source(source, trusted_cell_key=trusted, workers=workers or None, progress=advance)
    out.print(
        f"OK: {report.size} entries ({report.redacted} not released to this view), root {report.root}, "
        f"{report.heads} signed tree head(s), {report.cosignatures} cosignature(s)"
    )


def _verify_proof_bundle(bundle: Path) -> None:
    from fusioncell.record.proofs import verify_proof_bundle

    report = verify_proof_bundle(bundle)
    head = report.head
    out.print(f"OK: {len(report.entries)} entries ({report.released} released to {report.party}), each included "
              f"in the tree head of size {head['size']} signed by the cell (root {head['root']}), "
              f"{report.cosignatures} cosignature(s)")
    if report.subject.get("kind") == "dispute":
        from fusioncell.disputes.service import verified_state

        state = verified_state(report)
        out.print(f"dispute {report.subject['seq']}: {len(report.subject['seqs']) - 1} step(s), "
                  f"state {state.state.replace('_', ' ')}; every entry it cites is in the bundle")


@app.command()
def export(
    party: Annotated[str, typer.Option(help="Party whose view to export.")],
    out_file: Annotated[Path, typer.Option("--out", help="Bundle file to write (JSON Lines).")],
    dir: DirOption = None,
    db: DbOption = None,
    dispute: Annotated[Optional[int], typer.Option(
        help="Only this dispute: its steps and every entry they cite, with inclusion proofs.")] = None,
) -> None:
    """Write the log as PARTY may see it, with the latest signed tree head (or one dispute's proof bundle)."""
    from fusioncell.record.export import export_to_file

    if dispute is not None:
        from fusioncell.disputes.service import write_bundle

        with opened(dir, db, with_key=False) as cell:
            with cell.db.read() as session:
                tmp = out_file.with_name(out_file.name + ".partial")
                try:
                    with tmp.open("wb") as handle:
                        head = write_bundle(session, log=cell.log, party=party, seq=dispute, out=handle)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
                tmp.replace(out_file)
        out.print(f"wrote {out_file}: dispute {dispute} as {party} sees it, with inclusion proofs against the "
                  f"tree head of size {head['size']} (root {head['root']})")
        return
    with opened(dir, db, with_key=False) as cell:
        with cell.db.read() as session:
            total = cell.log.tree(session).size
            with progress_bar("exporting", total) as advance:
                head = export_to_file(session, party=party, path=out_file, progress=advance)
    out.print(f"wrote {out_file}: {head['size']} entries as {party} sees them, root {head['root']}")


@app.command()
def rebuild(dir: DirOption = None, db: DbOption = None) -> None:
    """Drop the projection tables and rebuild them from the log."""
    from fusioncell.record.rebuild import projection_digest
    from fusioncell.record.rebuild import rebuild as rebuild_projections

    with opened(dir, db, with_key=False) as cell:
        with cell.db.read() as session:
            before = projection_digest(session)
            total = cell.log.tree(session).size
        with cell.db.write() as session, progress_bar("rebuilding", total) as advance:
            count = rebuild_projections(session, progress=advance)
            after = projection_digest(session)
    same = "identical to" if before == after else "DIFFERENT from"
    out.print(f"rebuilt projections from {count} entries; state digest {after} is {same} the one before")


@app.command()
def status(dir: DirOption = None, db: DbOption = None) -> None:
    """Show the cell, its parties and the latest signed tree head."""
    from sqlalchemy import select

    from fusioncell.identity import service as identity_service
    from fusioncell.identity.models import Cell
    from fusioncell.record.models import TreeHead

    with opened(dir, db, with_key=False) as cell:
        with cell.db.read() as session:
            row = session.execute(select(Cell)).scalar_one()
            head = session.execute(select(TreeHead).order_by(TreeHead.size.desc()).limit(1)).scalar_one()
            out.print(f"[bold]{row.name}[/] ({row.id}), cell key {row.key_id}")
            for party in identity_service.list_parties(session):
                out.print(f"  {party.id:4} {party.role:10} {party.names.get('en', '')}")
            out.print(f"tree head: size {head.size}, root {head.root.hex()}, signed {head.signed_at}")


@key_app.command("generate")
def key_generate(out_file: Annotated[Path, typer.Option("--out", help="Where to write the new key (0600).")]) -> None:
    """Make a device key; prints its public key to enrol with `fusioncell key add`."""
    from fusioncell.record import signing
    from fusioncell.record.canonical import b64e

    with errors():
        if out_file.exists():
            fail(f"{out_file} exists; keys are never overwritten")
        key = signing.generate()
        signing.save_key(key, out_file)
    public = signing.public_bytes(key)
    out.print(f"public key {b64e(public)} (key id {signing.key_id(public)})")


@key_app.command("add")
def key_add(
    party: Annotated[str, typer.Option(help="Party the key acts for.")],
    holder: Annotated[str, typer.Option(help="Member id that signs with it, e.g. sy/liaison-1.")],
    public_key: Annotated[str, typer.Option(help="base64url Ed25519 public key.")],
    custody: Annotated[str, typer.Option(help="device or cell.")] = "device",
    purpose: Annotated[str, typer.Option(help="sign or witness.")] = "sign",
    dir: DirOption = None,
    db: DbOption = None,
) -> None:
    """Enrol a key (an identity.key_added entry signed by the cell)."""
    from fusioncell.identity import service as identity_service
    from fusioncell.record.canonical import b64d

    try:
        raw = b64d(public_key)
    except ValueError:
        fail("--public-key must be base64url without padding (43 characters)")
    if len(raw) != 32:
        fail("--public-key must decode to 32 bytes (an Ed25519 public key)")
    with opened(dir, db) as cell, cell.log.transaction(cell.db) as session:
        entry = identity_service.enrol_key(session, log=cell.log, party=party, holder=holder,
                                           public_key=raw, custody=custody, purpose=purpose)
    out.print(f"enrolled at seq {entry.seq}")


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id (16 hex characters).")],
    reason: Annotated[str, typer.Option(help="Why; recorded in the entry.")],
    dir: DirOption = None,
    db: DbOption = None,
) -> None:
    """Revoke a key: it signs nothing after this entry."""
    from fusioncell.identity import service as identity_service

    with opened(dir, db) as cell:
        with cell.log.transaction(cell.db) as session:
            entry = identity_service.revoke_key(session, log=cell.log, key_id=key_id, reason=reason)
    out.print(f"revoked at seq {entry.seq}")


@key_app.command("list")
def key_list(dir: DirOption = None, db: DbOption = None) -> None:
    """List every key ever enrolled."""
    from fusioncell.identity import service as identity_service

    with opened(dir, db, with_key=False) as cell:
        table = Table("key id", "party", "holder", "purpose", "custody", "added", "revoked")
        with cell.db.read() as session:
            for k in identity_service.list_keys(session):
                table.add_row(k.key_id, k.party, k.holder, k.purpose, k.custody, str(k.added_seq),
                              "" if k.revoked_seq is None else str(k.revoked_seq))
    out.print(table)


@member_app.command("add")
def member_add(
    member: Annotated[str, typer.Argument(help="Member id, e.g. sy/liaison-1 (party prefix, lower case).")],
    party: Annotated[str, typer.Option(help="Party the member belongs to.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    role: Annotated[list[str], typer.Option(help="liaison, supervisor, observer or admin; repeat for several.")],
    password: Annotated[Optional[str], typer.Option(help="Web password (asked for when omitted).",
                                                    envvar="FUSIONCELL_PASSWORD")] = None,
    no_password: Annotated[bool, typer.Option("--no-password", help="A device-only member.")] = False,
    dir: DirOption = None,
    db: DbOption = None,
) -> None:
    """Add a member (an identity.member_added entry); with a password, a cell-held key for the web."""
    from fusioncell.identity import service as identity_service

    bad = [r for r in role if r not in ("liaison", "supervisor", "observer", "admin")]
    if bad:
        fail(f"unknown role {bad[0]!r}; roles are liaison, supervisor, observer, admin")
    if not no_password and password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with opened(dir, db) as cell:
        with cell.log.transaction(cell.db) as session:
            identity_service.add_member(session, log=cell.log, kek=cell.kek, actor=None, member_id=member,
                                        party=party, name=name, roles=role,
                                        password=None if no_password else password)
    out.print(f"added {member} ({party}, {', '.join(role)})")


@member_app.command("list")
def member_list(dir: DirOption = None, db: DbOption = None) -> None:
    """List members."""
    from fusioncell.identity import service as identity_service

    with opened(dir, db, with_key=False) as cell:
        table = Table("member", "party", "name", "roles", "state")
        with cell.db.read() as session:
            for m in identity_service.list_members(session):
                table.add_row(m.id, m.party, m.name, ", ".join(m.roles),
                              "active" if m.disabled_seq is None else f"disabled at seq {m.disabled_seq}")
    out.print(table)


@member_app.command("disable")
def member_disable(
    member: Annotated[str, typer.Argument(help="Member id.")],
    reason: Annotated[str, typer.Option(help="Why; recorded in the entry.")],
    dir: DirOption = None,
    db: DbOption = None,
) -> None:
    """Disable a member: sessions end, tokens and keys stop working at once."""
    from fusioncell.identity import service as identity_service

    with opened(dir, db) as cell:
        with cell.log.transaction(cell.db) as session:
            identity_service.disable_member(session, log=cell.log, kek=cell.kek, actor=None, member_id=member,
                                            reason=reason)
    out.print(f"disabled {member}")


@member_app.command("token")
def member_token(
    member: Annotated[str, typer.Argument(help="Member id.")],
    scope: Annotated[list[str], typer.Option(help="read, write or witness; repeat for several.")],
    days: Annotated[int, typer.Option(help="Days until it expires.")] = 90,
    dir: DirOption = None,
    db: DbOption = None,
) -> None:
    """Issue an API token for a member's program (e.g. the party's witness); printed once."""
    from fusioncell.errors import NotFound
    from fusioncell.identity import service as identity_service

    with opened(dir, db) as cell:
        with cell.log.transaction(cell.db) as session:
            row = identity_service.get_member(session, member)
            if row is None or row.disabled_seq is not None:
                raise NotFound(f"no active member {member}")
            who = identity_service.Viewer(row.id, row.party, tuple(row.roles), "cli")
            token = identity_service.create_token(session, log=cell.log, viewer=who, scopes=scope, days=days)
    out.print(token)


@app.command()
def witness(
    url: Annotated[str, typer.Option(help="The cell's address, e.g. http://127.0.0.1:8470.")],
    token: Annotated[str, typer.Option(help="API token with witness scope.", envvar="FUSIONCELL_TOKEN")],
    party: Annotated[str, typer.Option(help="The party this witness speaks for.")],
    key: Annotated[Path, typer.Option(help="The party's witness key file (enrolled with --purpose witness).")],
    state: Annotated[Path, typer.Option(help="Where the witness keeps the last head it saw.")] = Path(
        "witness-state.json"),
    interval: Annotated[float, typer.Option(help="Seconds between checks.")] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="Check once and exit.")] = False,
) -> None:
    """Run a party's witness: check every new tree head against the last, countersign, alarm on a fork."""
    import time

    from fusioncell.client import Client
    from fusioncell.record import signing
    from fusioncell.witness import Witness, WitnessAlarm

    with errors():
        witness_key = signing.load_key(key)
    watcher = Witness(Client(url, token=token), party=party, key=witness_key, state_path=state)
    while True:
        try:
            head = watcher.check_once()
            out.print(f"ok: countersigned tree head size {head['size']} root {head['root']}")
        except WitnessAlarm as exc:
            fail(exc.message, 3)
        except FusioncellError as exc:
            console.print(f"[yellow]warning:[/] {exc.message}")
            if once:
                raise typer.Exit(1) from None
        except OSError as exc:
            console.print(f"[yellow]warning:[/] cannot reach {url}: {exc}")
            if once:
                raise typer.Exit(1) from None
        if once:
            return
        time.sleep(interval)


@app.command()
def serve(
    dir: DirOption = None,
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8470,
    mbtiles: Annotated[Optional[Path], typer.Option(help="A local MBTiles basemap to serve (raster PNG).")] = None,
    mt_models: Annotated[Optional[Path], typer.Option(help="Folder of Argos-format translation models.")] = None,
    check_processes: Annotated[int | None, typer.Option(
        min=0, help="Processes that check device-signed submissions (default: two per core; 0: none).")] = None,
) -> None:
    """Serve the cell over HTTP."""
    import uvicorn

    from fusioncell.app import create_app, server_config
    from fusioncell.cell import open_cell
    from fusioncell.deps import Settings

    if mbtiles is not None and not mbtiles.is_file():
        fail(f"no MBTiles file at {mbtiles}")
    with errors():
        cell = open_cell(data_dir(dir), db_url=db, upgrade=True)  # a cell made by an older version too
    out.print(f"fusioncell serving on http://{host}:{port}/")
    if check_processes is None:
        from fusioncell.record.checker import default_processes

        check_processes = default_processes()
    settings = Settings(mbtiles=str(mbtiles) if mbtiles else None, mt_models=str(mt_models) if mt_models else None,
                        check_processes=check_processes)
    server = uvicorn.Server(server_config(create_app(cell, settings=settings), host=host, port=port))
    server.run()
    if not server.started:  # as uvicorn.run: the port could not be bound, or the app did not start
        raise typer.Exit(3)


@app.command()
def demo(
    dir: DirOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8470,
) -> None:
    """Create the demo cell where DATA is empty, then serve it."""
    root = data_dir(dir)
    if not DataPaths(root).cell_key.exists():
        init(dir=root, config=None, demo=True, db=None)
    serve(dir=root, db=None, host=host, port=port, mbtiles=None, mt_models=None, check_processes=None)


def main() -> None:  # pragma: no cover
    sys.exit(app())
