"""Reminders (issue 5 §2): with ALERT_REMINDER_HOURS set, critical findings that stay open are
mailed again once per interval since the last email that named them; never without the setting.

End to end through the Functions entry points (`AlertsEnv`): each tick is six hours of the
services' clock; the ACS fake records what a recipient would get."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from partnerguard.graph import client as graph_client
from testbed.acs_fake import SentEmail
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from tests.alerts_harness import AlertsEnv, alerts_env
from tests.graph_sim import fast_pacer

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

TENANT = "c3c3c3c3-0000-4000-8000-000000000003"
REMINDER = "PartnerGuard reminder:"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantSimulator]:
    # One user without MFA (a high finding) and one Global Administrator without MFA (critical).
    tenant = generate_tenant(TENANT, 20, seed=41, display_name="Tailspin", incapable=1)
    admin = sorted(tenant.admin_user_ids())[0]
    set_mfa_capable(tenant.user_registration_details, admin, capable=False)
    # Six hours of the services' clock per tick, a second of real time: Graph's limits, and the
    # client's pacing to them, count real seconds and would make each tick wait for the last.
    monkeypatch.setattr(graph_client, "PROCESS_PACER", fast_pacer())
    with TenantSimulator([tenant], enforce_limits=False) as simulator:
        yield simulator


def set_mfa_capable(rows: list[dict[str, object]], user_id: str, capable: bool) -> None:
    for row in rows:
        if row["id"] == user_id:
            row["isMfaCapable"] = capable
            row["isMfaRegistered"] = capable
            row["methodsRegistered"] = ["microsoftAuthenticatorPush"] if capable else []


def critical_admin(sim: TenantSimulator) -> str:
    scenario = sim.tenant(TENANT)
    (admin,) = scenario.admin_user_ids() & scenario.mfa_incapable_user_ids()
    return admin


def plain_user(sim: TenantSimulator) -> str:
    scenario = sim.tenant(TENANT)
    (user,) = scenario.mfa_incapable_user_ids() - scenario.admin_user_ids()
    return user


def reminders(sent: list[SentEmail]) -> list[SentEmail]:
    return [email for email in sent if email.subject.startswith(REMINDER)]


@pytest.fixture
def env(azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, tmp_path: Path) -> Iterator[AlertsEnv]:
    yield from alerts_env(azurite.connection_string, table_prefix, sim, tmp_path, {"ALERT_REMINDER_HOURS": "12"})


@pytest.fixture
def env_without_reminders(
    azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, tmp_path: Path
) -> Iterator[AlertsEnv]:
    yield from alerts_env(azurite.connection_string, table_prefix, sim, tmp_path)


def test_open_critical_findings_are_reminded_every_interval_until_fixed(env: AlertsEnv, sim: TenantSimulator) -> None:
    admin, user = critical_admin(sim), plain_user(sim)

    (digest,) = env.cycle()  # 6 h: the first scan's digest names both findings (by name)
    admin_name = next(u["displayName"] for u in sim.tenant(TENANT).users if u["id"] == admin)
    assert not digest.subject.startswith(REMINDER) and admin_name in (digest.plain_text or "")
    critical = [r for r in env.services.store.active_findings(TENANT).values() if r.severity == "critical"]
    assert [(r.check_id, r.subject_id) for r in critical] == [("mfa.registration", admin)]

    assert env.cycle() == []  # 12 h: six hours since the digest named them

    (first,) = env.cycle()  # 18 h: twelve hours since the digest
    assert first.subject == f"{REMINDER} Tailspin — 1 critical finding still open"
    text = first.plain_text or ""
    assert admin in text and "mfa.registration" in text
    assert user not in text  # a high finding is not reminded

    assert env.cycle() == []  # 24 h: six hours since the reminder

    (second,) = env.cycle()  # 30 h: twelve hours since the reminder
    assert second.subject.startswith(REMINDER) and admin in (second.plain_text or "")
    assert second.operation_id != first.operation_id

    set_mfa_capable(sim.tenant(TENANT).user_registration_details, admin, capable=True)
    (fixed,) = env.cycle()  # 36 h: the digest saying it is resolved
    assert not fixed.subject.startswith(REMINDER) and "RESOLVED (1)" in (fixed.plain_text or "")

    # 42 h: twelve hours since the last reminder, but nothing critical is open any more.
    assert env.cycle() == []
    assert env.raised == []
    kinds = sorted(alert.kind for alert in env.services.alerts.all())
    assert kinds == ["reminder", "reminder", "run", "run"]


def test_without_the_setting_there_is_never_a_reminder(env_without_reminders: AlertsEnv) -> None:
    env = env_without_reminders
    sent = [email for _ in range(4) for email in env.cycle()]

    # The first scan's digest, and nothing for the critical finding left open for 18 hours.
    assert len(sent) == 1 and reminders(sent) == []
    assert [alert.kind for alert in env.services.alerts.all()] == ["run"]
