"""Projections of the shared gazetteer."""

from __future__ import annotations

from sqlalchemy import JSON, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fusioncell.db import Base


class Place(Base):
    """A named place or line, with its names in every language of the cell."""

    __tablename__ = "place"
    __table_args__ = {"info": {"projection": True}}

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    names: Mapped[dict] = mapped_column(JSON)  # language -> name
    alt_names: Mapped[list] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(32))
    geometry: Mapped[dict] = mapped_column(JSON)  # GeoJSON geometry, WGS84
    lat: Mapped[float] = mapped_column(Float)  # a representative point, for search and display
    lon: Mapped[float] = mapped_column(Float)
    search: Mapped[str] = mapped_column(String(2000))  # every name, case-folded, for search in any language
    added_seq: Mapped[int] = mapped_column(Integer)


class Zone(Base):
    """An agreed zone with rules, or a proposal until every party has signed the same text."""

    __tablename__ = "zone"
    __table_args__ = {"info": {"projection": True}}

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[dict] = mapped_column(JSON)
    text_hash: Mapped[str] = mapped_column(String(64))  # what the parties sign: the proposal's body hash
    proposed_seq: Mapped[int] = mapped_column(Integer)
    signatures: Mapped[dict] = mapped_column(JSON)  # party -> seq of its signature
    effective_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
