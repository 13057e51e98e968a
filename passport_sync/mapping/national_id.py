"""National ID normalisation.

Patient Passport stores ``nationalId`` as 10 to 16 ASCII digits. OpenMRS identifiers are free
text. We accept only separators a human types between digit groups (spaces, dashes, dots,
slashes) and reject anything else: stripping letters or converting other scripts' digits could
turn one person's identifier into another person's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from passport_sync.models import IdentifierType

_SEPARATORS = re.compile(r"[\s\-./]+")
_ASCII_DIGITS = re.compile(r"^[0-9]{10,16}$")


def normalise_national_id(raw: str | None) -> str | None:
    """The digits-only form of ``raw``, or None when it is not a valid national ID.

    Leading zeros are kept: the identifier is a string, not a number.
    """
    if raw is None:
        return None
    candidate = _SEPARATORS.sub("", raw)
    if not _ASCII_DIGITS.match(candidate):
        return None
    return candidate


PREFERRED_TYPE_NAME = "national id"
_NAME_SEPARATORS = re.compile(r"[\s_\-]+")


def choose_identifier_type(candidates: Sequence[IdentifierType]) -> IdentifierType | None:
    """The one national-ID type among the types a name pattern matched, or None when it is not
    clear which. With several (e.g. "National ID", "Mother's National ID", "Father's National
    ID"), only the one named exactly "National ID" (any case, spaces, dashes or underscores) is
    chosen: a parent's number on a child's chart must never count as the child's own."""
    if len(candidates) == 1:
        return candidates[0]
    exact = [c for c in candidates if _NAME_SEPARATORS.sub(" ", c.name).strip().casefold() == PREFERRED_TYPE_NAME]
    return exact[0] if len(exact) == 1 else None
