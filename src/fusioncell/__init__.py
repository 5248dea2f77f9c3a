"""fusioncell: the software of a joint coordination cell, on a signed append-only record."""

__version__ = "0.1.0"
