"""`--format json`: the `partnerguard.report/v1` document, or `partnerguard.reports/v1` for `--all`."""

from __future__ import annotations

import json
from collections.abc import Sequence

from partnerguard.model import Report, reports_document


def render_json(reports: Sequence[Report], *, many: bool) -> str:
    document = reports_document(reports) if many else reports[0].to_document()
    # ensure_ascii keeps the document 7-bit clean: bidi marks and control characters in tenant
    # names arrive as \\u escapes a consumer cannot misread.
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"
