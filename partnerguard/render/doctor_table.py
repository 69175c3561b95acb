"""`doctor --format table` (the default): each tenant's access, and each gap with what it blinds
and the fix, for a person at a terminal. Tenant-controlled text (names, sign-in errors) goes
through `safe_text`, like every other table."""

from __future__ import annotations

from collections.abc import Sequence

from partnerguard.doctor.diagnosis import Diagnosis
from partnerguard.doctor.facts import GDAP_NOT_APPLICABLE, SIGN_IN_OK
from partnerguard.text import safe_text

LABEL_WIDTH = 12


def _line(label: str, text: str) -> str:
    return f"  {label:<{LABEL_WIDTH}} {text}"


def _permissions(diagnosis: Diagnosis) -> str:
    if diagnosis.facts.sign_in != SIGN_IN_OK:
        return "unknown (no token)"
    if diagnosis.facts.roles is None:
        return "unknown (the token's roles could not be read)"
    total = len(diagnosis.granted) + len(diagnosis.missing)
    text = f"{len(diagnosis.granted)} of {total} granted"
    if diagnosis.missing:
        text += "; MISSING " + ", ".join(diagnosis.missing)
    if diagnosis.satisfied_by:
        text += "; " + ", ".join(f"{need} via {held}" for need, held in diagnosis.satisfied_by.items())
    return text


def _p1(value: bool | None) -> str:
    return {True: "present", False: "MISSING", None: "unknown"}[value]


def render_diagnosis(diagnosis: Diagnosis) -> str:
    tenant = diagnosis.tenant
    verdict = "OK" if diagnosis.healthy else "GAPS"
    lines = [
        f"{safe_text(tenant.name, 80)} ({tenant.id}, {tenant.role} tenant, {diagnosis.facts.cloud} cloud)  {verdict}",
    ]
    sign_in = diagnosis.facts.sign_in
    if diagnosis.facts.detail:
        sign_in += f" — {safe_text(diagnosis.facts.detail, 300)}"
    lines.append(_line("sign-in", sign_in))
    lines.append(_line("permissions", _permissions(diagnosis)))
    lines.append(_line("Entra ID P1", _p1(diagnosis.facts.entra_id_p1)))
    gdap = "not applicable (partner tenant)" if diagnosis.gdap == GDAP_NOT_APPLICABLE else diagnosis.gdap
    lines.append(_line("GDAP", gdap.upper() if gdap == "none" else gdap))
    if diagnosis.blinded:
        blinded = ", ".join(f"{b.check} ({b.reason_code})" for b in diagnosis.blinded)
        lines.append(_line("blinds", blinded))
    for degraded in diagnosis.degraded:
        lines.append(_line("degrades", f"{degraded.check} ({degraded.reason_code}): {degraded.detail}"))
    for fix in diagnosis.fixes:
        lines.append(_line("fix", safe_text(fix, 1000)))
    if diagnosis.checked_at is not None:
        lines.append(_line("checked", f"{diagnosis.checked_at:%Y-%m-%d %H:%M:%S} UTC"))
    return "\n".join(lines)


def render_doctor_table(diagnoses: Sequence[Diagnosis]) -> str:
    with_gaps = sum(1 for d in diagnoses if not d.healthy)
    head = f"PartnerGuard doctor — {len(diagnoses)} tenant(s), {with_gaps} with gaps"
    return "\n\n".join([head, *(render_diagnosis(d) for d in diagnoses)]) + "\n"
