"""gdap.privileged-roles and gdap.expiring over GDAP relationships (partner tenant, SPEC §1)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from checks import gdap_expiring, gdap_privileged_roles
from partnerguard.evaluate import run_check
from partnerguard.model import CheckOutcome, Severity, Status, SubjectType, Unavailable
from tests.snapshot_builders import (
    GLOBAL_ADMINISTRATOR,
    HELPDESK_ADMINISTRATOR,
    NOW,
    PRIVILEGED_ROLE_ADMINISTRATOR,
    USER_ADMINISTRATOR,
    context,
    gdap_relationship,
    guid,
    snapshot,
)

DAY = timedelta(days=1)
CLOUD = Unavailable("GDAP APIs exist only in the public cloud.", "cloud")


def privileged(relationships, **fields) -> CheckOutcome:
    return gdap_privileged_roles.execute(snapshot(delegated_admin_relationships=relationships, **fields), context())


def expiring(relationships, **context_fields) -> CheckOutcome:
    return gdap_expiring.execute(snapshot(delegated_admin_relationships=relationships), context(**context_fields))


# -- gdap.privileged-roles --------------------------------------------------------------------


def test_least_privileged_relationships_pass():
    assert (
        privileged([gdap_relationship("a", roles=[HELPDESK_ADMINISTRATOR, USER_ADMINISTRATOR])]).status is Status.PASS
    )
    assert privileged([]).status is Status.PASS


@pytest.mark.parametrize(
    ("roles", "named"),
    [
        ([GLOBAL_ADMINISTRATOR], ["Global Administrator"]),
        ([HELPDESK_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR], ["Privileged Role Administrator"]),
        (
            [PRIVILEGED_ROLE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR],
            ["Global Administrator", "Privileged Role Administrator"],
        ),
        ([GLOBAL_ADMINISTRATOR.upper()], ["Global Administrator"]),
    ],
)
def test_privileged_roles_fail(roles, named):
    relationship = gdap_relationship("fabrikam", roles=roles)
    (finding,) = privileged([relationship]).findings
    assert finding.subject_id == relationship["id"]
    assert finding.subject_type is SubjectType.RELATIONSHIP
    assert finding.subject_name == "Fabrikam Ltd"
    assert finding.severity is Severity.HIGH
    assert finding.evidence["privilegedRoles"] == named
    assert finding.evidence["customerTenantId"] == guid("customer-fabrikam")
    assert "Fabrikam Ltd" in finding.detail


@pytest.mark.parametrize("status", ["active", "expiring", "Active"])
def test_relationships_in_force_count(status):
    assert privileged([gdap_relationship("a", status=status, roles=[GLOBAL_ADMINISTRATOR])]).status is Status.FAIL


@pytest.mark.parametrize(
    "status",
    [
        "terminated",
        "approvalPending",
        "created",
        "approved",
        "activating",
        "expired",
        "terminating",
        "terminationRequested",
        "unknownFutureValue",
        "",
    ],
)
def test_relationships_not_in_force_are_ignored(status):
    assert privileged([gdap_relationship("a", status=status, roles=[GLOBAL_ADMINISTRATOR])]).status is Status.PASS


def test_reseller_relationships_are_included():
    relationship = gdap_relationship("indirect", reseller=True, roles=[GLOBAL_ADMINISTRATOR])
    (finding,) = privileged([relationship]).findings
    assert finding.evidence["relationshipType"] == "reseller"


def test_findings_sorted_by_relationship_id():
    relationships = [gdap_relationship(name, roles=[GLOBAL_ADMINISTRATOR]) for name in ("b", "a", "c")]
    found = [f.subject_id for f in privileged(relationships).findings]
    assert found == sorted(r["id"] for r in relationships)


def test_customer_without_name_is_named_by_tenant_id():
    relationship = gdap_relationship("anon", roles=[GLOBAL_ADMINISTRATOR])
    relationship["customer"] = {"tenantId": guid("customer-anon"), "displayName": None}
    (finding,) = privileged([relationship]).findings
    assert finding.subject_name == guid("customer-anon")


def test_malformed_relationships_are_tolerated():
    broken = gdap_relationship("broken", roles=[GLOBAL_ADMINISTRATOR])
    broken["accessDetails"] = {"unifiedRoles": [None, "x", {"roleDefinitionId": 7}]}
    broken["customer"] = "nobody"
    assert privileged([broken, "not an object"]).status is Status.PASS


@pytest.mark.parametrize("check", [gdap_privileged_roles, gdap_expiring], ids=lambda c: c.METADATA.id)
def test_outside_the_public_cloud_not_assessed_with_cloud_code(check):
    outcome = run_check(check, snapshot(delegated_admin_relationships=CLOUD), context())
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "cloud"


@pytest.mark.parametrize("check", [gdap_privileged_roles, gdap_expiring], ids=lambda c: c.METADATA.id)
def test_customer_tenants_are_out_of_scope(check):
    relationships = [gdap_relationship("a", roles=[GLOBAL_ADMINISTRATOR], end=NOW + DAY, auto_extend="PT0S")]
    outcome = run_check(check, snapshot(role="customer", delegated_admin_relationships=relationships), context())
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "scope:partner-only"


# -- gdap.expiring ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "reported"),
    [
        (NOW + 30 * DAY, True),  # exactly at the threshold
        (NOW + 30 * DAY + timedelta(seconds=1), False),
        (NOW + DAY, True),
        (NOW - DAY, True),  # past its end while still listed as expiring
        (None, False),
    ],
)
def test_expiry_threshold(end, reported):
    relationship = gdap_relationship(
        "a", status="expiring" if end and end < NOW else "active", end=end, auto_extend="PT0S"
    )
    outcome = expiring([relationship])
    assert outcome.status is (Status.FAIL if reported else Status.PASS)


@pytest.mark.parametrize(("auto_extend", "reported"), [("PT0S", True), ("P0D", True), (None, True), ("P180D", False)])
def test_auto_extend(auto_extend, reported):
    relationship = gdap_relationship("a", end=NOW + 10 * DAY, auto_extend=auto_extend)
    assert expiring([relationship]).status is (Status.FAIL if reported else Status.PASS)


def test_expiring_finding():
    relationship = gdap_relationship("contoso", end=NOW + 10 * DAY, auto_extend="P0D", reseller=True)
    (finding,) = expiring([relationship]).findings
    assert finding.subject_id == relationship["id"]
    assert finding.subject_type is SubjectType.RELATIONSHIP
    assert finding.subject_name == "Contoso Ltd"
    assert finding.severity is Severity.MEDIUM
    assert finding.evidence["daysRemaining"] == 10.0
    assert finding.evidence["autoExtendDuration"] == "P0D"
    assert finding.evidence["relationshipType"] == "reseller"
    assert "ends in 10 day(s)" in finding.detail


def test_threshold_follows_the_setting():
    relationship = gdap_relationship("a", end=NOW + 45 * DAY, auto_extend="PT0S")
    assert expiring([relationship]).status is Status.PASS
    assert expiring([relationship], gdap_expiry_days=60).status is Status.FAIL


@pytest.mark.parametrize("status", ["terminated", "approvalPending", "expired"])
def test_expiring_ignores_relationships_not_in_force(status):
    relationship = gdap_relationship("a", status=status, end=NOW + DAY, auto_extend="PT0S")
    assert expiring([relationship]).status is Status.PASS
