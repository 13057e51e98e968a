"""Choosing the display name of a concept from its ``concept_name`` rows."""

from __future__ import annotations

from collections.abc import Iterable

from passport_sync.models import ConceptName


def _rank(name: ConceptName) -> tuple[int, int, int]:
    # Within one locale: the preferred name, then the fully specified one, then any other.
    return (
        0 if name.locale_preferred else 1,
        0 if name.name_type == "FULLY_SPECIFIED" else 1,
        name.concept_name_id,
    )


def choose_concept_name(names: Iterable[ConceptName], locale: str) -> str | None:
    """The name to show for ``locale`` (e.g. ``en_GB``): that locale, then its language
    (``en``), then any fully specified name, then any name at all. None if there is none.
    """
    names = list(names)
    if not names:
        return None
    language = locale.split("_", 1)[0]
    for wanted in (locale, language):
        in_locale = [n for n in names if n.locale == wanted and n.name_type != "INDEX_TERM"]
        if in_locale:
            return min(in_locale, key=_rank).name
    fully_specified = [n for n in names if n.name_type == "FULLY_SPECIFIED"]
    pool = fully_specified or names
    return min(pool, key=lambda n: (n.locale, n.concept_name_id)).name


def chosen_answer_name(names: Iterable[ConceptName], locale: str, picked_name_id: int | None) -> str | None:
    """The name of a coded answer: the exact name the clinician picked when it is in the
    configured language, else the usual choice."""
    names = list(names)
    language = locale.split("_", 1)[0]
    if picked_name_id is not None:
        for name in names:
            if name.concept_name_id == picked_name_id and name.locale.split("_", 1)[0] == language:
                return name.name
    return choose_concept_name(names, locale)
