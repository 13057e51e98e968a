"""Choosing the display name of a concept from its ``concept_name`` rows, as OpenMRS does."""

from __future__ import annotations

from collections.abc import Iterable

from passport_sync.models import ConceptName

# Never shown: a SHORT name is an abbreviation for forms, an INDEX_TERM a search word.
_NOT_SHOWN = frozenset({"SHORT", "INDEX_TERM"})


def _rank(name: ConceptName) -> tuple[int, int, int]:
    # Within one locale: the preferred name, then the fully specified one, then any other.
    return (
        0 if name.locale_preferred else 1,
        0 if name.name_type == "FULLY_SPECIFIED" else 1,
        name.concept_name_id,
    )


def _language(locale: str) -> str:
    return locale.replace("-", "_").split("_", 1)[0].lower()


def choose_concept_name(names: Iterable[ConceptName], locale: str, default_locale: str | None = None) -> str | None:
    """The name to show for ``locale`` (e.g. ``en_GB``): that locale, then its language (``en``),
    then OpenMRS's ``default_locale`` the same way, then the first fully specified name recorded.
    Never a SHORT name nor an index term. None if there is none."""
    shown = [n for n in names if n.name_type not in _NOT_SHOWN]
    if not shown:
        return None
    for wanted in (locale, default_locale):
        if not wanted:
            continue
        exact = [n for n in shown if n.locale == wanted]
        same_language = exact or [n for n in shown if _language(n.locale) == _language(wanted)]
        if same_language:
            # A name in the exact locale ("en") before a regional one ("en_US") of the language.
            return min(same_language, key=lambda n: (n.locale != _language(wanted), *_rank(n))).name
    fully_specified = [n for n in shown if n.name_type == "FULLY_SPECIFIED"] or shown
    return min(fully_specified, key=lambda n: n.concept_name_id).name


def chosen_answer_name(
    names: Iterable[ConceptName], locale: str, picked_name_id: int | None, default_locale: str | None = None
) -> str | None:
    """The name of a coded answer: the exact name the clinician picked when it is in the
    configured language (and not a SHORT name), else the usual choice."""
    names = list(names)
    if picked_name_id is not None:
        for name in names:
            if (
                name.concept_name_id == picked_name_id
                and _language(name.locale) == _language(locale)
                and name.name_type not in _NOT_SHOWN
            ):
                return name.name
    return choose_concept_name(names, locale, default_locale)
