"""Reading the method-strength figures (SPEC §2 `metrics`) off an HTML report or dashboard page.

The page is parsed with the standard library's HTML parser, so assertions are about the cells a
browser would build: per tenant (the figure's `data-tenant`), the table's column headers, each
row's cells as (data-count, data-total, visible text), and the figure's paragraphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class StrengthFigure:
    headers: list[str] = field(default_factory=list)
    # row key (mfa_capable, phishing_resistant, phone_only) -> [all users cell, admins cell]
    rows: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _StrengthParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: dict[str, StrengthFigure] = {}
        self._figure: StrengthFigure | None = None
        self._row: str | None = None
        self._cell: tuple[int, int] | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if tag == "figure" and "strength" in classes:
            self._figure = self.figures.setdefault(values.get("data-tenant") or "", StrengthFigure())
        if self._figure is None:
            return
        if tag == "tr":
            self._row = next((c.removeprefix("strength-") for c in classes if c.startswith("strength-")), None)
        elif tag == "td" and self._row:
            self._cell = (int(values.get("data-count") or -1), int(values.get("data-total") or -1))
            self._text = []
        elif (tag == "th" and values.get("scope") == "col") or tag == "p":
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        figure = self._figure
        if figure is None:
            return
        text = " ".join("".join(self._text or []).split())
        if tag == "figure":
            self._figure = None
        elif tag == "td" and self._cell is not None and self._row:
            figure.rows.setdefault(self._row, []).append((*self._cell, text))
            self._cell, self._text = None, None
        elif tag == "th" and self._text is not None and self._row is None:
            figure.headers.append(text)
            self._text = None
        elif tag == "p" and self._text is not None:
            figure.notes.append(text)
            self._text = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def strength_figures(html: str) -> dict[str, StrengthFigure]:
    """Tenant id -> its method-strength figure, for every tenant section of the page."""
    parser = _StrengthParser()
    parser.feed(html)
    parser.close()
    return parser.figures


def figure_counts(figure: StrengthFigure) -> dict[str, int]:
    """The figure's counts under the report document's names (all users, then admins)."""
    counts: dict[str, int] = {}
    for key, cells in figure.rows.items():
        (users_count, users_total, _), (admins_count, admins_total, _) = cells
        counts[key] = users_count
        counts["admins_" + key] = admins_count
        counts["users_in_scope"], counts["admins"] = users_total, admins_total
    return counts
