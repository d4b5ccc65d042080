"""Triage fails closed: eligible needs positive evidence on every axis; anything the rules
cannot read sends a call to review, naming what was missing (PRODUCT.md, "Fail closed")."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corespond.triage.classifier import TriageDecision, TriageInput, classify
from corespond.triage.ruleset import load_rules

# The rules alone: what the learned second opinion adds is tested in test_triage_model.py.
RULES = dataclasses.replace(load_rules(), second_opinion=None)


def triage(narrative: str, call_type: str = "INTOX", **kwargs: object) -> TriageDecision:
    return classify(TriageInput(call_type=call_type, narrative=narrative, **kwargs), RULES)  # type: ignore[arg-type]


def reason(decision: TriageDecision, rule: str) -> str:
    return next(r.detail for r in decision.reasons if r.rule == rule)


ELIGIBLE = [
    ("OD", "SUBJ REVIVED WITH NARCAN, CONSCIOUS AND TALKING, NO WEAPONS SEEN"),
    ("INTOX", "MALE SUBJ DRUNK SLEEPING IN DOORWAY OF CHURCH, BREATHING, WOKE UP"),
    ("WELFARE CHECK", "SISTER REQ CHECK, BROTHER USING AGAIN, WANTS TREATMENT"),
    ("23C01", "PT F 30S. CONSCIOUS: Y BREATHING: Y. TOOK PERCS. NOW ALERT. VIOLENT: N"),
    ("DVNA", "VERBAL ONLY, HUSBAND DRUNK AND YELLING, NOTHING PHYSICAL"),
]


@pytest.mark.parametrize(("call_type", "narrative"), ELIGIBLE)
def test_eligible_calls_show_evidence_on_every_axis(call_type: str, narrative: str) -> None:
    decision = triage(narrative, call_type)
    assert decision.decision == "eligible", decision.summary
    kinds = {r.kind for r in decision.reasons}
    assert {"substance", "kind"} <= kinds
    assert "every word understood" in decision.summary


# Danger written the way people write it, without any crime word: none of these words is
# in the rules. Each must keep an otherwise eligible call from being eligible.
PLAIN_DANGER = [
    "HE SLAMMED HER HEAD INTO THE WALL",
    "BF DRAGGED HER ACROSS THE YARD BY HER HAIR",
    "SHE HAS FINGER MARKS ON HER NECK",
    "HE PINNED HER TO THE FLOOR AND WOULD NOT GET OFF",
    "BROTHER HAS A GASH OVER HIS EYE FROM THE FIGHT EARLIER",
    "NEIGHBOR HEARD 3 LOUD POPS FROM THE TRAILER",
    "HE SWUNG A SKILLET AT HIS MOTHER",
    "SHE WONT LET HIM OUT OF THE BATHROOM",
    "HE DROVE HERE AFTER A 12 PACK",
    "HES STRAPPED AND SAYS HE WILL SMOKE ANYBODY WHO COMES IN",
    "SUBJ BUSTED OUT THE CAR WINDOWS WITH A TIRE IRON",
    "SHE HAS BRUISES ALL OVER HER ARMS",
]


@pytest.mark.parametrize("danger", PLAIN_DANGER)
@pytest.mark.parametrize(("call_type", "narrative"), ELIGIBLE[:3])
def test_danger_in_plain_words_is_never_eligible(
    call_type: str, narrative: str, danger: str
) -> None:
    assert triage(f"{narrative}. {danger}", call_type).decision != "eligible"
    assert triage(f"{danger}, {narrative}", call_type).decision != "eligible"


word = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=12)


@settings(max_examples=300, deadline=None)
@given(new=word, at=st.integers(min_value=0, max_value=20), which=st.integers(0, len(ELIGIBLE) - 1))
def test_a_word_the_rules_do_not_know_never_leaves_a_call_eligible(
    new: str, at: int, which: int
) -> None:
    """Fail closed, as a property: any word outside the vocabulary, anywhere in an
    eligible narrative, sends the call to review (or further) and is named."""
    if (
        new in RULES.known_words
        or new in RULES.abbreviations
        or new.rstrip("S") in RULES.safe_words
    ):
        return  # a word the rules do know (an abbreviation such as MHP is read in full)
    call_type, narrative = ELIGIBLE[which]
    words = narrative.split()
    words.insert(at % (len(words) + 1), new)
    decision = triage(" ".join(words), call_type)
    assert decision.decision != "eligible"
    if decision.decision == "review" and "policy.not_understood" in {
        r.rule for r in decision.reasons
    }:
        assert new in reason(decision, "policy.not_understood")


def test_unknown_words_are_named_in_the_reason() -> None:
    decision = triage("SUBJ DRUNK ON PORCH, SMASHED THE TV, SHATTERED GLASS")
    assert decision.decision != "eligible"
    decision = triage("SUBJ DRUNK ON PORCH, KERFUFFLE WITH THE MAILMAN, HE GOT A BLICKY")
    assert decision.decision == "review"
    assert reason(decision, "policy.not_understood") == "KERFUFFLE, BLICKY"
    assert "words not understood (KERFUFFLE, BLICKY)" in decision.summary


def test_a_call_type_alone_never_makes_a_call_eligible() -> None:
    for code in ("OD", "INTOX", "23C01", "LIQUOR VIOLATIONS (INCLUDES INTOXICATED PERSON)"):
        decision = triage("", code)
        assert decision.decision == "review"
        assert reason(decision, "policy.substance_not_stated") == "no narrative yet"
    decision = triage("PT IS TALKING, ALERT", "OD")
    assert reason(decision, "policy.substance_not_stated") == "only the call type implies it"


@pytest.mark.parametrize(
    "narrative",
    [
        "GRANDMOTHER TOOK HER BLOOD PRESSURE PILLS TWICE BY MISTAKE, ALERT",
        "PT IS DIABETIC, SUGAR IS LOW, CONFUSED, TOOK INSULIN",
        "FAMILY OF 4 FEELING SICK, CO ALARM GOING OFF",
        "FEMALE BELIEVES SOMEONE PUT SOMETHING IN HER DRINK AT THE BAR",
    ],
)
def test_substance_like_calls_that_are_not_substance_use_are_not_eligible(
    narrative: str,
) -> None:
    decision = triage(narrative, "OD")
    assert decision.decision == "ineligible", decision.summary
    assert decision.reasons[0].rule == "policy.not_substance_use"


def test_unknown_call_types_go_to_review_saying_so() -> None:
    decision = triage("SUBJ DRUNK ON PORCH", "ZX9")
    assert decision.decision == "review"
    assert reason(decision, "policy.unknown_call_type") == "call type ZX9"


def test_a_conflict_call_needs_words_that_it_stayed_verbal() -> None:
    decision = triage("HUSBAND DRUNK, WIFE CALLED", "DOM")
    assert decision.decision == "review"
    assert reason(decision, "policy.conflict_not_verbal") == (
        "call type DOM is a domestic or conflict type and nothing says it stayed verbal"
    )
    assert triage("HUSBAND DRUNK, VERBAL ONLY", "DOM").decision == "eligible"
    assert triage("HUSBAND DRUNK, NOBODY TOUCHED ANYBODY", "DOM").decision == "eligible"
    # A drunk person's disturbance is that person's, not a conflict between two.
    assert triage("MALE DRUNK YELLING AT CARS", "113C_Disturb/Nuis Intoxicated").decision == (
        "eligible"
    )


def test_a_verbal_call_type_is_overruled_by_a_narrative_of_contact() -> None:
    assert triage("HUSBAND DRUNK, SHE HAS A BLACK EYE", "DOMESTIC VERBAL").decision == (
        "ineligible"
    )
    assert triage("HUSBAND DRUNK, HE SHOVED HER", "DOMESTIC VERBAL").decision == "ineligible"
    assert triage("HUSBAND DRUNK, HE YANKED HER ARM", "DOMESTIC VERBAL").decision == "review"


@pytest.mark.parametrize(
    "narrative",
    [
        "SUBJ DRUNK, SAYS HE WANTS TO DIE",
        "SUBJ DRUNK, SENT HIS SISTER A GOODBYE TEXT",
        "SUBJ DRINKING ALL DAY, GAVE HIS DOG AND TRUCK AWAY THIS WEEK",
        "SUBJ USING AGAIN, SAYS SHE WANTS TO GO TO SLEEP AND NOT WAKE UP",
        "SUBJ DRUNK, SAYS EVERYONE WOULD BE BETTER OFF WITHOUT HIM",
        "SUBJ DRUNK, SAYS HE DOESNT WANT TO BE HERE ANYMORE",
    ],
)
def test_suicide_signs_direct_or_indirect_go_to_review(narrative: str) -> None:
    decision = triage(narrative)
    assert decision.decision == "review"


@pytest.mark.parametrize(
    ("narrative", "expected"),
    [
        ("SUBJ DRUNK, DID SHOTS OF WHISKEY AT THE BAR", "eligible"),
        ("SUBJ DRUNK, HEARD 2 SHOTS BEHIND THE BAR", "ineligible"),
        ("SUBJ DRUNK, FIRE DEPT ON SCENE FOR LIFT ASSIST", "eligible"),
        ("SUBJ DRUNK, SET THE COUCH ON FIRE", "ineligible"),
        ("SUBJ DRUNK, SOMEONE FIRED FROM A CAR", "review"),
        ("SUBJ DRUNK, GOT FIRED FROM HIS JOB TODAY", "eligible"),
        ("SUBJ DRUNK, HAS A NAIL GUN IN HIS SHED", "eligible"),
        ("SUBJ DRUNK, HAS A GUN", "ineligible"),
        ("SUBJ DRUNK, HURT HIS SHOULDER BLADE IN A FALL", "review"),
        ("SUBJ DRUNK, HAS A BLADE", "ineligible"),
        ("SUBJ HIGH, CRACK PIPE ON TABLE", "eligible"),
        ("SUBJ DRUNK, SWINGING A METAL PIPE", "ineligible"),
        ("SUBJ DRUNK, PIPE IN HIS HAND", "review"),
        ("SUBJ DRUNK AT THE BAR ON MAIN ST", "eligible"),
        ("SUBJ DRUNK, HIT HIM WITH A METAL BAR", "ineligible"),
        ("SUBJ DRUNK, TOOK 2 XANAX BARS", "eligible"),
        ("SUBJ HIGH, PACING", "eligible"),
        ("SUBJ DRUNK AT THE HIGH SCHOOL GAME", "eligible"),
        ("SUBJ DRUNK, MINOR INJURY FROM A FALL, REFUSED EMS", "review"),
        ("SUBJ DRUNK, IS A MINOR", "review"),
        ("SUBJ DRUNK, SELLING PILLS", "ineligible"),
        ("SUBJ DRUNK, ASKING FOR MONEY", "eligible"),
        ("SUBJ DRUNK, DROVE HERE", "ineligible"),
        ("SUBJ DRUNK, HIS MOM DROVE HIM HERE", "eligible"),
        ("SUBJ DRUNK, CANT DRIVE", "eligible"),
        ("SUBJ DRUNK, HAS A LOADED PISTOL", "ineligible"),
        ("SUBJ IS LOADED, STUMBLING", "eligible"),
        ("SUBJ DRUNK, LOADED THE DISHWASHER", "eligible"),
        ("SUBJ DRUNK, PULLED A PIECE ON HIS BROTHER", "ineligible"),
        ("SUBJ DRUNK, ATE A PIECE OF PIZZA", "eligible"),
        ("SUBJ DRUNK, PIECE IN HIS POCKET", "review"),
    ],
)
def test_words_of_several_senses_are_read_by_their_context(narrative: str, expected: str) -> None:
    assert triage(narrative).decision == expected, triage(narrative).summary


def test_a_sense_table_entry_can_be_added_by_a_rule_author(tmp_path: object) -> None:
    from pathlib import Path

    override = Path(str(tmp_path)) / "local.yaml"
    override.write_text(
        'version: "s1"\n'
        "senses:\n"
        "  - words: [HOOPTIE]\n"
        "    means:\n"
        "      safe: [IN HIS HOOPTIE]\n"
        "    otherwise: danger.weapon\n"
    )
    rules = load_rules(override)
    parked = TriageInput(call_type="INTOX", narrative="SUBJ DRUNK ASLEEP IN HIS HOOPTIE")
    # The rules read it (the learned second opinion may still ask for a person).
    read = classify(parked, rules)
    assert read.decision in ("eligible", "review")
    assert "not understood" not in read.summary
    assert not read.danger
    other = TriageInput(call_type="INTOX", narrative="SUBJ DRUNK, HOOPTIE")
    assert classify(other, rules).decision == "ineligible"


@pytest.mark.parametrize(
    "narrative",
    [
        "SUBJ DRUNK, HAS A KN\u200bIFE",  # zero-width space
        "SUBJ DRUNK, HAS A \uff2b\uff2e\uff29\uff26\uff25",  # full-width letters
        "SUBJ DRUNK, HAS A K\u00adNIFE",  # soft hyphen
    ],
)
def test_hidden_and_full_width_characters_are_read_as_the_word_they_show(narrative: str) -> None:
    assert triage(narrative).decision == "ineligible"


def test_a_look_alike_letter_makes_a_word_not_understood() -> None:
    decision = triage("SUBJ DRUNK, HAS A KNIF\u0415")  # Cyrillic capital IE
    assert decision.decision == "review"
    assert "KNIF\u0415" in reason(decision, "policy.not_understood")


def test_key_question_answers_are_read() -> None:
    assert triage("PT DRUNK. WEAPONS: N. VIOLENT: N. ALERT.", "INTOX").decision == "eligible"
    assert triage("PT DRUNK. WEAPONS: Y.", "INTOX").decision == "ineligible"
    assert triage("PT TOOK FENT. CONSCIOUS: N. EMS ENRT.", "23D01").decision == "review"


def test_no_substance_recognised_with_unread_words_goes_to_review() -> None:
    decision = triage("SUBJ WHACKED OUT ON THE STUFF", "SUSPICIOUS PERSON")
    assert decision.decision == "review"
    assert "policy.no_substance_recognised" in {r.rule for r in decision.reasons}
    assert triage("LOUD MUSIC NEXT DOOR", "NOISE").decision == "ineligible"


@pytest.mark.parametrize(
    "narrative",
    [
        "SUBJ OD, WIFE HIT XQZV WITH NARCAN, NOW AWAKE AND TALKING",  # an unless slot
        "SUBJ DRUNK, DRANK FROM A XQZV BOTTLE, CALM",  # a sense context's slot
    ],
)
def test_a_word_in_a_contexts_open_slot_is_read_on_its_own(narrative: str) -> None:
    """A harmless context's "_" stands for any word; that word is not explained by it."""
    decision = triage(narrative, "OD")
    assert decision.decision == "review"
    assert "XQZV" in reason(decision, "policy.not_understood")


# A "no" followed by ordinary news is a denial; one followed by words that point back at
# the thing, move it elsewhere or hedge is not (one judgment, text.takes_back, for every
# way a "no" is written).
@pytest.mark.parametrize(
    "narrative",
    [
        "SUBJ DRUNK. KQ: ALERT Y, INJURED N, WEAPONS N, DISTURBANCE N. HUSBAND EN ROUTE ON FOOT.",
        "SUBJ DRUNK. KQ VIOLENT N, WEAPONS N. EMS ON LOC.",
    ],
)
def test_a_no_followed_by_other_news_is_a_denial(narrative: str) -> None:
    assert triage(narrative).decision == "eligible", triage(narrative).summary


@pytest.mark.parametrize(
    "narrative",
    [
        "SUBJ DRUNK. KQ: ALERT Y, WEAPONS N, DISTURBANCE N. IN HIS TRUCK.",
        "SUBJ DRUNK. ANY WEAPONS? NO. WIFE DOES.",
        "SUBJ DRUNK. ANY WEAPONS? NO, HE HAS ONE IN THE TRUCK",
        "SUBJ DRUNK. WEAPONS: NONE. JUST THE ONE IN HIS TRUCK",
        "SUBJ DRUNK. WEAPONS: NO. NOT SURE ABOUT THE GARAGE",
        "SUBJ DRUNK. ANY WEAPONS? NO, NOT ON HIM",
        "SUBJ DRUNK. ASKED ABOUT WEAPONS, RP STS NO DRUGS.",
        "SUBJ DRUNK. SHE SAID DONT HIT ME.",
        "SUBJ DRUNK. SHE SAID NO HITTING.",
        "SUBJ DRUNK. HE SAYS NO ONE IS TAKING THE GUNS OUT OF THIS HOUSE.",
        "SUBJ DRUNK. CT: ANY GUNS IN THE HOUSE? 'no just hunting stuff downstairs'",
        "SUBJ DRUNK. CT: HAS HE CALMED OR IS HE VIOLENT? 'no'",
        "SUBJ DRUNK. WEAPONS: NONE KNOWN. RP CALLED BACK, SAYS HIS DAD HAS ONE IN THE TRUCK",
        "SUBJ DRUNK. ANY WEAPONS? no. dads is in his truck",
        "SUBJ DRUNK. DENIES HAVING A GUN, RP SAW IT EARLIER TONIGHT.",
        "SUBJ DRUNK. CLERK THINKS ITS NOT A REAL GUN BUT ISNT SURE.",
    ],
)
def test_a_no_taken_back_hedged_or_pleaded_is_not_a_denial(narrative: str) -> None:
    assert triage(narrative).decision != "eligible", triage(narrative).summary


def test_a_drugged_victim_is_not_substance_use() -> None:
    decision = triage("FRIEND SAYS SOMEONE SLIPPED HER SOMETHING, NOW CONFUSED", "26A01")
    assert decision.decision != "eligible", decision.summary
