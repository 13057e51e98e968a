"""National ID normalisation.

Patient Passport stores ``nationalId`` as 10 to 16 ASCII digits. OpenMRS identifiers are free
text. We accept only separators a human types between digit groups (spaces, dashes, dots,
slashes) and reject anything else: stripping letters or converting other scripts' digits could
turn one person's identifier into another person's.
"""

from __future__ import annotations

import re

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
