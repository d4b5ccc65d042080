"""What a person is asked to agree to, word for word, by version: the peer's phone shows it,
the person types their name and checks the box, and the consent keeps the version."""

from __future__ import annotations

CURRENT = "2026-11"
STATEMENTS = {
    "2026-11": (
        "I agree that {provider} may keep my name (or the name I give), a way to reach me "
        "and my county, to follow up with me for up to a year after today. I agree that "
        "they may share those of them I choose with the people I name below, only for the "
        "purposes I choose, until the date below. I can take this back at any time by "
        "telling any peer of {provider}: from then on nothing more is shared with anyone. "
        "Saying no does not change the help I get today. Federal law (42 CFR Part 2) "
        "protects these records; whoever receives them may not share them further without "
        "my written consent."
    ),
}
PURPOSE_LABELS = {
    "care_coordination": "coordinating my care",
    "treatment_referral": "referring me to treatment",
    "follow_up": "following up with me",
    "deconfliction": "recognising me if I am met again",
}
SHARE_LABELS = {"police": "Police", "treatment": "Treatment provider", "qrt": "Quick Response Team"}
FIELD_LABELS = {"name": "my name", "contact": "how to reach me", "county": "my county"}


def statement(version: str, provider_name: str) -> str:
    return STATEMENTS[version].format(provider=provider_name)
