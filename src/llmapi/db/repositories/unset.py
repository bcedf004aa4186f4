"""A marker for "argument not given", distinct from None (which often means "clear this field")."""

from __future__ import annotations

from enum import Enum
from typing import Final


class Unset(Enum):
    TOKEN = "unset"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.TOKEN
