"""The scripted queries of the demo's story, placed in the scenario's time line.

1. A doctor at hospital-a reads the story patient's home readings for treatment: allowed.
2. A researcher asks for the same patient's readings for research: denied, the patient's
   Consent does not cover research.
3. The public-health bureau pulls the air-quality readings during the pollution episode.
4. A receiving hospital reads a referred patient's lab report for treatment: allowed.
5. After the story patient withdraws (see :mod:`patients`), the doctor asks again: denied.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .air_quality import Episode
from .clock import Window, rfc3339
from .params import (
    AIR_QUALITY,
    HOSPITAL_A,
    HOSPITAL_B,
    PUBLIC_HEALTH_BUREAU,
    REFERRAL,
    RESEARCH_INSTITUTE,
)
from .patients import ConsentPlan
from .referral import Referral
from .scenario import PurposeOfUse, QueryEvent

VERSION = "1"
CLIENTS = {
    HOSPITAL_A: f"{HOSPITAL_A}-ehr",
    HOSPITAL_B: f"{HOSPITAL_B}-ehr",
    RESEARCH_INSTITUTE: "research-institute-portal",
    PUBLIC_HEALTH_BUREAU: "public-health-bureau-portal",
}


def _query(
    moment: datetime,
    pilot: str,
    org: str,
    type_id: str,
    patient: str | None,
    purpose: PurposeOfUse,
    expect: str,
    story: str,
    since: datetime | None = None,
) -> QueryEvent:
    return QueryEvent.model_validate(
        {
            "t": rfc3339(moment),
            "kind": "query",
            "pilot": pilot,
            "source": CLIENTS[org],
            "type": type_id,
            "patient": patient,
            "consent": None,
            "payload": {
                "org": org,
                "purpose": purpose,
                "since": rfc3339(since) if since else None,
                "expect": expect,
                "story": story,
            },
        }
    )


def generate(
    window: Window,
    story_plan: ConsentPlan | None,
    episode: Episode | None,
    referrals: list[Referral],
) -> list[QueryEvent]:
    out = []
    if story_plan is not None:
        who = story_plan.patient
        name = who.name
        out.append(
            _query(
                window.at(0.3),
                story_plan.pilot,
                HOSPITAL_A,
                "fhir.Observation",
                who.local_id,
                "TREAT",
                "allow",
                f"A doctor at hospital-a reviews {name}'s home blood pressure before a visit.",
            )
        )
        out.append(
            _query(
                window.at(0.3) + timedelta(minutes=5),
                story_plan.pilot,
                RESEARCH_INSTITUTE,
                "fhir.Observation",
                who.local_id,
                "HRESCH",
                "deny",
                f"A researcher asks for {name}'s readings; {name} did not consent to research.",
            )
        )
        if story_plan.withdrawn is not None and story_plan.withdrawn < window.end:
            out.append(
                _query(
                    min(
                        story_plan.withdrawn + timedelta(minutes=10),
                        window.end - timedelta(seconds=1),
                    ),
                    story_plan.pilot,
                    HOSPITAL_A,
                    "fhir.Observation",
                    who.local_id,
                    "TREAT",
                    "deny",
                    f"{name} has withdrawn consent: the same doctor's query is now refused.",
                )
            )
    if episode is not None and episode.start < window.end:
        moment = min(max(episode.peak, window.start), window.end - timedelta(seconds=1))
        out.append(
            _query(
                moment,
                AIR_QUALITY,
                PUBLIC_HEALTH_BUREAU,
                "city.air-quality",
                None,
                "PUBHLTH",
                "allow",
                "The public-health bureau pulls air-quality readings during the pollution episode.",
                since=max(episode.start, window.start),
            )
        )
    sent = [r for r in referrals if r.sender == HOSPITAL_A]
    if sent:
        first = sent[0]
        moment = min(first.sent + timedelta(minutes=15), window.end - timedelta(seconds=1))
        out.append(
            _query(
                moment,
                REFERRAL,
                first.receiver,
                "fhir.DiagnosticReport",
                first.plan.patient.local_id,
                "TREAT",
                "allow",
                f"{first.receiver} reads the lab report hospital-a sent with a referral.",
            )
        )
    return out
