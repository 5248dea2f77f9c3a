"""What needs a member's attention now. Each module registers a provider; the home page shows them all,
most urgent first, each with its time left."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.identity.models import SigningKey
from fusioncell.identity.service import Viewer
from fusioncell.record.models import Cosignature, TreeHead


@dataclass(frozen=True)
class Attention:
    title: str  # already translated
    detail: str
    href: str
    due: datetime | None = None  # shown as a countdown
    severity: int = 1  # 3 flash, 2 urgent, 1 normal


Provider = Callable[[Session, Viewer, datetime], list[Attention]]
_PROVIDERS: list[Provider] = []


def provider(function: Provider) -> Provider:
    _PROVIDERS.append(function)
    return function


def collect(session: Session, viewer: Viewer, now: datetime) -> list[Attention]:
    items = [item for p in _PROVIDERS for item in p(session, viewer, now)]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(items, key=lambda a: (-a.severity, a.due or far))


@provider
def _witness_behind(session: Session, viewer: Viewer, now: datetime) -> list[Attention]:
    """The party has a witness, but it has not countersigned the latest head: history is unchecked."""
    from fusioncell.web.i18n import _

    has_witness = session.execute(select(SigningKey.key_id).where(
        SigningKey.party == viewer.party, SigningKey.purpose == "witness",
        SigningKey.revoked_seq.is_(None)).limit(1)).scalar()
    if not has_witness:
        return []
    last = session.execute(select(TreeHead.size).order_by(TreeHead.size.desc()).limit(1)).scalar_one()
    signed = session.execute(select(Cosignature.size).where(Cosignature.party == viewer.party)
                             .order_by(Cosignature.size.desc()).limit(1)).scalar()
    if signed == last:
        return []
    return [Attention(_("Your witness has not countersigned the latest tree head"),
                      _("Latest head: %(size)s entries. Last countersigned: %(signed)s.", size=last,
                        signed=signed if signed is not None else "—"), "/records")]
