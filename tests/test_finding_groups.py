"""Findings grouped by what is wrong (`partnerguard.finding_groups`), and the terminal table that
shows them that way: one sentence per kind, then its subjects, administrators first."""

from __future__ import annotations

from datetime import UTC, datetime

from partnerguard.finding_groups import ELLIPSIS, admin_user_ids, group_by_detail
from partnerguard.model import (
    CheckOutcome,
    CheckResult,
    Finding,
    Severity,
    Status,
    SubjectType,
    TenantInfo,
    build_report,
)
from partnerguard.render.table import SUBJECTS_SHOWN_PER_GROUP, render_report
from tests.email_checks import check_metadata

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def group(
    rows: list[tuple[str, str]], admins: frozenset[str] = frozenset()
) -> list[tuple[str, list[str], list[tuple[str, ...]]]]:
    groups = group_by_detail(rows, detail=lambda r: r[1], name=lambda r: r[0], is_admin=lambda r: r[0] in admins)
    return [(g.sentence, [m.name for m in g.members], [m.particulars for m in g.members]) for g in groups]


def test_same_sentence_one_group_names_sorted() -> None:
    sentence = "Per-user MFA state is 'disabled', so nothing challenges this user."
    assert group([("Zoe", sentence), ("adam", sentence), ("Bob", sentence)]) == [
        (sentence, ["adam", "Bob", "Zoe"], [(), (), ()])
    ]


def test_particulars_that_differ_become_an_ellipsis_and_stay_with_their_subject() -> None:
    rows = [
        ("Grady", "2 sign-in(s) through 'Imap4' since 2026-12-04, within 168 hours."),
        ("Ada", "1 sign-in(s) through 'POP3' since 2026-12-06, within 168 hours."),
    ]
    ((sentence, names, particulars),) = group(rows)
    assert sentence == f"{ELLIPSIS} sign-in(s) through {ELLIPSIS} since {ELLIPSIS}, within 168 hours."
    assert names == ["Ada", "Grady"]
    assert particulars == [("1", "'POP3'", "2026-12-06"), ("2", "'Imap4'", "2026-12-04")]


def test_different_wording_is_a_different_kind_and_the_subject_name_is_masked() -> None:
    rows = [
        ("Fabrikam", "The relationship with Fabrikam grants Global Administrator."),
        ("Litware", "The relationship with Litware grants Global Administrator."),
        ("Tailspin", "The relationship with Tailspin grants Privileged Role Administrator."),
        ("a@b.example", "Signed in as a@b.example with a password."),
        ("c@d.example", "Signed in as c@d.example with a password."),
    ]
    found = group(rows)
    assert [(s, n) for s, n, _ in found] == [
        (f"The relationship with {ELLIPSIS} grants Global Administrator.", ["Fabrikam", "Litware"]),
        (
            "The relationship with Tailspin grants Privileged Role Administrator.",
            ["Tailspin"],
        ),  # a group of one: as written
        (f"Signed in as {ELLIPSIS} with a password.", ["a@b.example", "c@d.example"]),
    ]
    assert found[0][2] == [(), ()]  # the name is shown as the subject, not repeated as a particular


def test_admins_first_then_by_name() -> None:
    rows = [(name, "Same.") for name in ("Ann", "Bea", "Cal", "Dee")]
    ((_, names, _),) = group(rows, admins=frozenset({"Dee", "Bea"}))
    assert names == ["Bea", "Dee", "Ann", "Cal"]


def test_admins_are_only_those_evidence_marks() -> None:
    admins = admin_user_ids(
        [
            ("user", "U1", {"isAdmin": True}),
            ("user", "u2|imap4", {"isAdmin": True}),
            ("user", "u3", {"isAdmin": False}),
            ("user", "u4", {"isAdmin": "true"}),  # not a JSON true
            ("application", "app|u5", {"isAdmin": True}),  # not a user subject
        ]
    )
    assert admins == {"u1", "u2"}


def _report(findings: list[Finding]) -> str:
    metadata = check_metadata("mfa.enforcement", "Every sign-in requires MFA", remediation="Create one policy.")
    report = build_report(
        TenantInfo("t1", "Contoso", "partner"),
        "run-1",
        T0,
        T0,
        [CheckResult(metadata, CheckOutcome(Status.FAIL, findings))],
        {},
    )
    return render_report(report)


def test_the_table_says_a_repeated_sentence_once_with_its_subjects() -> None:
    sentence = "Per-user MFA state is 'disabled', so nothing challenges this user."
    findings = [Finding(f"u{i:02}", SubjectType.USER, f"User {i:02}", sentence, Severity.CRITICAL) for i in range(20)]
    findings.append(Finding("u99", SubjectType.USER, "Zed Admin", sentence, Severity.CRITICAL, {"isAdmin": True}))
    table = _report(findings)
    assert table.count(sentence) == 1
    assert "mfa.enforcement — 21 finding(s)" in table
    subjects = table.split(sentence, 1)[1].split("\n")[1]
    shown = ", ".join(["Zed Admin (admin)", *(f"User {i:02}" for i in range(SUBJECTS_SHOWN_PER_GROUP - 1))])
    assert subjects.strip() == f"21: {shown}, … and {21 - SUBJECTS_SHOWN_PER_GROUP} more"


def test_the_table_keeps_hostile_names_inert_in_groups() -> None:
    hostile = "\x1b[31m<script>\u202eevil\nFAKE"
    table = _report([Finding("u1", SubjectType.USER, hostile, f"{hostile} has no MFA.", Severity.HIGH)])
    assert "\x1b" not in table and "\u202e" not in table and "\nFAKE" not in table
    assert "\\x1b[31m<script>\\u202eevil\\x0aFAKE" in table
