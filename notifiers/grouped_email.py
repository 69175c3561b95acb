"""Several alerts for the same recipients, sent as one message.

Azure Communication Services Email accepts only a few messages a minute and an hour (SPEC §6:
5/minute and 10/hour on an Azure-managed domain). When it throttles, the alert worker combines
the alerts waiting for the same recipients into one message rather than holding them back for
hours. `combine` keeps each alert whole and in order, under a short table of contents.

The combined HTML is one document (one html/head/body): each alert contributes its body
(`RenderedEmail.html_fragment`), not its document. Those bodies are inserted as they are,
neither escaped again nor unescaped: they are trusted only because they come from this
package's renderers, which escaped every value when they rendered it; the subjects in the
table of contents are plain text and are escaped here like any value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup

from notifiers.email_view import RenderedEmail, clip, render_email
from partnerguard.model import iso

HTML_TEMPLATE = "grouped.html.j2"
TEXT_TEMPLATE = "grouped.txt.j2"

# The first alert's subject as the combined subject quotes it.
FIRST_SUBJECT_LIMIT = 100
# Each alert's subject in the table of contents: a subject is one line, and long ones are cut.
CONTENTS_SUBJECT_LIMIT = 200

# Every subject starts with the product's name; the combined subject says it once.
_PRODUCT_PREFIX = re.compile(r"^PartnerGuard:?\s+")


def _subject(emails: Sequence[RenderedEmail]) -> str:
    first = clip(_PRODUCT_PREFIX.sub("", emails[0].subject), FIRST_SUBJECT_LIMIT)
    return f"PartnerGuard: {len(emails)} alerts — {first}, and {len(emails) - 1} more"


def _view(emails: Sequence[RenderedEmail], as_of: datetime) -> dict[str, Any]:
    count = len(emails)
    return {
        "subject": _subject(emails),
        "count": count,
        "as_of": iso(as_of),
        "sections": [
            {
                "number": number,
                "subject": clip(email.subject, CONTENTS_SUBJECT_LIMIT),
                # Markup: our renderers' output, already escaped (HTML) and inert (text). As
                # Markup it is neither escaped again nor passed through `inert` again, which
                # would turn the text's line breaks into "\x0a".
                "html": Markup(email.html_fragment),  # noqa: S704 (see above)
                "text": Markup(email.text.rstrip("\n")),  # noqa: S704 (see above)
            }
            for number, email in enumerate(emails, start=1)
        ],
    }


def combine(emails: Sequence[RenderedEmail], as_of: datetime) -> RenderedEmail:
    """One message carrying `emails` in order; a single email is returned unchanged."""
    if not emails:
        raise ValueError("nothing to combine")
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    if len(emails) == 1:
        return emails[0]
    return render_email(HTML_TEMPLATE, TEXT_TEMPLATE, _view(emails, as_of))
