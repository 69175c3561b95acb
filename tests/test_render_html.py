"""`--format html` (and the dashboard's page): what the page says, and that tenant text stays text.

The page is parsed with the standard library's HTML parser, so the assertions are about the
elements and attributes a browser would build, not about substrings. The browser itself runs
the page in tests/test_report_html_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from html.parser import HTMLParser

from checks import CHECK_IDS
from partnerguard.model import Severity, TenantInfo
from partnerguard.render.history import NO_HISTORY
from partnerguard.render.html_report import (
    CONTENT_SECURITY_POLICY,
    SCRIPT,
    STYLE,
    Monitoring,
    TenantEntry,
    render_html,
    render_html_reports,
)
from partnerguard.storage.records import RunRecord
from tests.report_builders import (
    HOSTILE_ATTRIBUTE,
    HOSTILE_IMG,
    HOSTILE_LONG,
    HOSTILE_SCRIPT,
    NOW,
    OTHER_TENANT_ID,
    RAW_UNSAFE,
    TENANT_ID,
    finding,
    history,
    hostile_report,
    report,
)


class Page(HTMLParser):
    """Every element with its attributes, and the text of <script> and <style> elements."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._inside: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in self.raw:
            self._inside = tag
            self.raw[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.raw[self._inside][-1] += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]


def sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def hostile_page() -> str:
    return render_html_reports([hostile_report()], {TENANT_ID: history()}, NOW)


def test_hostile_tenant_text_never_becomes_markup() -> None:
    html = hostile_page()
    page = Page(html)
    # The elements a browser would build: none of them from tenant data.
    assert not page.all("img") and not page.all("iframe") and not page.all("object")
    assert {tag for tag, _ in page.elements if tag == "svg"} <= {"svg"}
    assert all(attrs.get("onload") is None for attrs in page.all("svg"))
    for tag, attrs in page.elements:
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, (tag, attrs)
    # Exactly one script: the constant filter script, with no attributes.
    assert page.all("script") == [{}] and page.raw["script"] == [SCRIPT]
    # Tenant text shows as text, escaped in the source.
    for hostile in (HOSTILE_IMG, HOSTILE_SCRIPT, HOSTILE_ATTRIBUTE):
        assert hostile not in html
    assert "&lt;img src=x onerror=" in html and "&lt;script&gt;document" in html
    # Control characters, ANSI escapes and bidi overrides are shown as escapes, not obeyed.
    for char in RAW_UNSAFE:
        assert char not in html, repr(char)
    assert "\\u202e" in html and "\\x1b[2J" in html
    # A 10 KB display name is cut to a readable length.
    assert HOSTILE_LONG not in html and "L" * 199 + "…" in html
    # Filter attributes only ever hold catalogue values.
    rows = page.all("tr")
    assert {row["data-check"] for row in rows if "data-check" in row} <= set(CHECK_IDS)


def test_the_policy_allows_exactly_the_inline_style_and_script_by_their_hashes() -> None:
    page = Page(hostile_page())
    (meta,) = [m for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    policy = meta["content"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in (policy or "").split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == f"'{sha256(page.raw['style'][0])}'" == f"'{sha256(STYLE)}'"
    assert directives["script-src"] == f"'{sha256(page.raw['script'][0])}'" == f"'{sha256(SCRIPT)}'"
    assert "unsafe" not in policy  # no 'unsafe-inline', no 'unsafe-eval', no 'unsafe-hashes'
    # Nothing the policy would block is on the page: no style attribute, no external reference.
    assert all("style" not in attrs for _, attrs in page.elements)
    for _, attrs in page.elements:
        for name in ("src", "href", "action", "xlink:href"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (name, value)


def test_summary_shows_mfa_coverage_checks_by_status_and_findings() -> None:
    html = hostile_page()
    # 31 of 40 users MFA capable (the mfa.registration evidence): 77.5 %, rounded down.
    assert "77.5 %" in html and "31 of 40 assessed users can complete MFA" in html
    assert re.search(r'<meter[^>]*value="77.5"', html)
    # 11 checks: 2 fail, 1 not assessed, 1 error, 7 pass.
    assert "7</span> / 11 pass" in html
    assert "2 fail" in html and "1 not assessed" in html and "1 error" in html
    assert "Needs Microsoft Entra ID P1." in html and "licence:AAD_PREMIUM" in html


def test_mfa_coverage_is_unknown_without_the_counts_never_guessed() -> None:
    older = report({"mfa.registration": [(finding("u1", "Bob"), "new")]})  # no coverage evidence
    html = render_html_reports([older], None, NOW)
    assert "MFA coverage" in html and "Not recorded by the run that produced this report" in html
    assert "<meter" not in html


def test_coverage_below_one_hundred_never_rounds_up_to_it() -> None:
    nearly = report(evidence={"mfa.registration": {"in_scope_users": 2000, "assessed_users": 2000,
                                                   "mfa_capable_users": 1999}})
    assert "99.9 %" in render_html_reports([nearly], None, NOW)


def test_compliance_chart_draws_one_column_per_completed_run() -> None:
    stored = history(run_count=8)  # 7 succeeded runs and 1 failed before any check
    queued = RunRecord(TENANT_ID, "run-queued", "queued", finished=None)
    html = render_html_reports([hostile_report()], {TENANT_ID: replace(stored, runs=(queued, *stored.runs))}, NOW)
    page = Page(html)
    columns = [attrs for attrs in page.all("g") if "run" in (attrs.get("class") or "").split()]
    assert len(columns) == 8  # the queued run is left out
    assert len([r for r in page.all("rect") if r.get("class") == "bar-nosummary"]) == 1
    # Each succeeded run stacks pass, not assessed and fail (no errors in these runs).
    assert len([r for r in page.all("rect") if r.get("class") == "bar-pass"]) == 7 + 1  # + the summary bar
    assert "run run-07 succeeded: fail 2, error 0, not assessed 1, pass 7" in html
    assert "run run-02 failed before any check ran" in html


def test_a_tenant_without_stored_runs_says_so() -> None:
    html = render_html_reports([report()], None, NOW)
    assert "No completed run is stored yet." in html
    assert "No findings." in html


def test_findings_table_lists_every_finding_with_its_filter_values() -> None:
    hostile = hostile_report()
    page = Page(render_html_reports([hostile], {TENANT_ID: history()}, NOW))
    rows = [attrs for attrs in page.all("tr") if attrs.get("class") == "finding"]
    expected = [(c.id, item) for c in hostile.checks for item in c.findings]
    assert len(rows) == len(expected) == 10
    # Most severe first.
    assert rows[0]["data-severity"] == "critical"
    assert [r["data-state"] for r in rows].count("new") == 7
    assert [r["data-state"] for r in rows].count("excepted") == 1
    options = {
        select: [o.get("value") for o in _options(page, select)]
        for select in ("filter-state", "filter-severity", "filter-check")
    }
    assert options["filter-state"] == ["", "new", "open", "excepted"]
    assert options["filter-severity"] == ["", "critical", "high", "medium"]
    assert options["filter-check"] == ["", "mfa.registration", "apps.client-secrets"]
    # One tenant: no tenant filter.
    assert not any(attrs.get("id") == "filter-tenant" for _, attrs in page.elements)


def test_several_tenants_get_an_overview_and_a_tenant_filter() -> None:
    other = report(
        {"mfa.enforcement": [(finding("p1", "Baseline policy", Severity.CRITICAL), "new")]},
        tenant=TenantInfo(OTHER_TENANT_ID, "Fabrikam", "customer"),
    )
    page = Page(render_html_reports([hostile_report(), other], None, NOW))
    assert [o.get("value") for o in _options(page, "filter-tenant")] == ["", "1", "2"]
    sections = [attrs.get("id") for tag, attrs in page.elements if tag == "section" and attrs.get("class") == "tenant"]
    assert sections == ["tenant-1", "tenant-2"]


def test_details_carry_remediation_link_first_seen_evidence_and_exception() -> None:
    html = hostile_page()
    assert 'href="#check-1-1">how to fix</a>' in html
    # The admin finding's lifecycle dates, from the stored history.
    assert '<time datetime="2025-05-29T12:00:00Z">2025-05-29 12:00 UTC</time>' in html
    # The exception's reason is tenant-controlled too.
    assert "accepted by ciso@contoso.example until 2025-07-01: &lt;script&gt;" in html
    # Remediation steps become a list.
    assert re.search(r'<ol class="steps"><li>For each user listed', html)


def test_the_dashboard_variant_caps_findings_and_shows_monitoring() -> None:
    monitoring = Monitoring(
        consent="missing",
        consent_error="<b>AADSTS65001</b>",
        last_run={"run_id": "newer-run", "status": "failed", "finished": None, "summary": None},
        last_run_error="consent_missing: " + HOSTILE_SCRIPT,
        last_successful_run_age_hours=30.0,
        stale=True,
    )
    entries = [
        TenantEntry(hostile_report().tenant, hostile_report(), history(), monitoring),
        TenantEntry(TenantInfo(OTHER_TENANT_ID, "Never Scanned", "customer"), None, NO_HISTORY, monitoring),
    ]
    html = render_html(entries, NOW, title="PartnerGuard — tenants", findings_limit=3, more_findings_hint="GET x")
    page = Page(html)
    assert len([a for a in page.all("tr") if a.get("class") == "finding"]) == 3
    assert "7 more findings of this tenant are not listed below: <code>GET x</code>" in html
    assert "&lt;b&gt;AADSTS65001&lt;/b&gt;" in html and "30.0 h ago (stale)" in html
    assert "newest run <code>newer-run</code>" in html
    assert "No completed scan of this tenant yet." in html


def _options(page: Page, select_id: str) -> list[dict[str, str | None]]:
    inside = False
    options = []
    for tag, attrs in page.elements:
        if tag == "select":
            inside = attrs.get("id") == select_id
        elif tag == "option" and inside:
            options.append(attrs)
        elif tag in ("label", "input", "button"):
            inside = False
    return options
