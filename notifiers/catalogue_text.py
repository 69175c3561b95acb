"""What an alert says about a check it names only by id: the check's title and remediation.

A reminder (and a reminder's card or webhook document) is built from stored finding records,
which keep the check id but not its wording; the wording comes from the catalogue of the running
version, so an alert always says what the current catalogue says. One place decides what a check
the running version no longer knows (a stored finding of a retired check) is called, so the
email, the Teams card and the webhook never disagree about it.
"""

from __future__ import annotations

from typing import NamedTuple

from checks import UnknownCheckError, get_check


class CatalogueText(NamedTuple):
    title: str
    # Empty for a check the running version does not know: there is no guidance to give.
    remediation: str


def catalogue_entry(check_id: str) -> CatalogueText:
    """The check's title and remediation from the catalogue; (its id, "") for an unknown check."""
    try:
        metadata = get_check(check_id).METADATA
    except UnknownCheckError:
        return CatalogueText(check_id, "")
    return CatalogueText(metadata.title, metadata.remediation)
