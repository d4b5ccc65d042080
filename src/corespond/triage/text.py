"""CAD text as the classifier sees it: upper-case tokens in clauses, shorthand expanded.

Dispatch text is terse and inconsistent ("SUBJ ETOH, NO WPNS SEEN", "Disturb/Nuis Intoxic
Wpn", "15YOA"). Normalising it once here keeps the rules simple: a rule lists words and
phrases; spelling variants are the abbreviation table's job.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

# Clause boundaries end a negation's reach: "NO WEAPONS SEEN, HAS KNIFE" negates nothing after
# the comma.
CLAUSE_PUNCTUATION = frozenset(".;,!?")
# A word is any run of letters and digits, in any script: a word spelled with a look-alike
# letter (a Latin word with one Cyrillic letter) stays one word that no vocabulary knows,
# rather than falling apart into pieces that might be known.
_TOKEN = re.compile(r"[^\W_]+|[.;,!?]")
_APOSTROPHE = re.compile("['`\u2019]")
# Ages: "15 YOA", "16 YEAR OLD", "17YO", "15 Y/O", "14 YRS OLD", "AGE 15", "16 YOM", "15YOF".
_AGE = re.compile(
    r"\b(\d{1,2})\s*(?:-\s*)?(?:YOA|YO|Y/O|Y\.O\.?|YOM|YOF|YRS?\.?\s*OLD|YEARS?[\s-]*OLD|YR[\s-]*OLD)\b"
    r"|\bAGE[\s:]*(\d{1,2})\b"
    # "W/M 16", "B/F APPROX 15", and age ranges "APPROX 16-17".
    r"|\b[WBHAIU]/[MF]\s*(?:APPROX\.?\s*|APPX\.?\s*|APX\.?\s*|ABT\.?\s*)?(\d{1,2})\b"
    r"|\b(?:APPROX|APPX|APX)\.?\s*(\d{1,2})\s*-\s*\d{1,2}\b"
    # "KID 14", "SON (16)", "SUBJ IS 16": a person word and an age standing alone.
    # "PT M 15", "PT F16" (medical-priority style), "HE IS 17".
    r"|\b(?:PT|PATIENT|SUBJ|SUBJECT)\s+[MF]\s*(\d{1,2})\b"
    r"|\b(?:HE|SHE)\s+IS\s+(\d{1,2})\b(?!\s*(?:MIN|MINS|MINUTES|HR|HRS|HOURS|DAYS|WEEKS|FT|FEET))"
    # "MY SON IS 15", "SHES ACTUALLY 17 AND", "A BOY ABOUT 16": an age that ends its clause.
    r"|\b(?:IS|SHES|HES|WAS)\s+(?:ACTUALLY\s+|ONLY\s+|JUST\s+|LIKE\s+|ABOUT\s+|AROUND\s+)?"
    r"(\d{1,2})(?=\s*(?:[,.;)!?]|$|\s+(?:AND|BUT|YEARS|YRS|YR|Y/O|YO|HE|SHE|HES|SHES|AT|IN)\b))"
    r"|\b(?:BOY|GIRL|KID|TEEN|TEENAGER|JUVENILE|GUY|MALE|FEMALE|YOUNG\s+MAN|YOUNG\s+WOMAN)\s+"
    r"(?:ABOUT|AROUND|APPROX\.?|APPX\.?|APX\.?|ABT\.?|MAYBE|LIKE|AGED?)\s+(\d{1,2})\b"
    # "MY DAUGHTER, 16,", "GRANDSON 15", "STEPSON AGED 16", "CHILD 15 YOA", "LOOKS ABOUT 14".
    r"|\b(?:SON|DAUGHTER|GRANDSON|GRANDDAUGHTER|STEPSON|STEPDAUGHTER|BROTHER|SISTER|NEPHEW|NIECE|"
    r"COUSIN|CHILD|KID|BOY|GIRL)\s*,?\s*(?:AGED?\s+|WHO\s+IS\s+)?(\d{1,2})\b"
    r"(?!\s*(?:MIN|MINS|MINUTES|HR|HRS|HOURS|DAYS|WEEKS|MONTHS|TIMES|BEERS|PILLS|SHOTS|DRINKS|MG))"
    r"|\bLOOKS\s+(?:ABOUT\s+|LIKE\s+|AROUND\s+|APPROX\.?\s+|APPX\.?\s+|APX\.?\s+)?(\d{1,2})\b"
    # "INTOX FEMALE 16", "SONS GF 15": a person and a number that ends its clause.
    r"|\b(?:MALE|FEMALE|MAN|WOMAN|GF|BF|GIRLFRIEND|BOYFRIEND|FRIEND|ROOMMATE|STUDENT|PERSON|"
    r"JUV|RESIDENT|PASSENGER|DRIVER|VICTIM|SUSPECT|CALLER|RP|TEXTER|W/M|W/F|B/M|B/F|H/M|H/F)"
    r"\s*,?\s*(\d{1,2})\b(?!\s*(?:MIN|MINS|MINUTES|HR|HRS|HOURS|DAYS|WEEKS|MONTHS|TIMES|BEERS|"
    r"PILLS|SHOTS|DRINKS|MG|OZ|FT|FEET|UNITS|PACK|PACKS|CANS|BOTTLES|DOLLARS|BUCKS|X|TO|OR|-)\b)"
    r"|\b(?:KID|SON|DAUGHTER|BOY|GIRL|CHILD|TEEN|SUBJ|SUBJECT|PT|PATIENT)\s*"
    r"(?:\(\s*(\d{1,2})\s*\)|IS\s+(\d{1,2})(?=\s*(?:[,.;]|$))|(\d{1,2})(?=\s*(?:[,.;)]|$)))"
    # "16 Y O", "16 YRS," (a number by an age unit), "F/16", "M/15".
    r"|\b(\d{1,2})\s*(?:Y\s+O|YRS?|YEARS?)\b(?!\s*(?:AGO|CLEAN|SOBER|SINCE|LATER|BACK|IN|OF|"
    r"WITH|OUT|MARRIED|TOGETHER|NOW|SOBRIETY|PRISON|JAIL))"
    r"|\b[MF]/(\d{1,2})\b"
    # "HER 16TH BIRTHDAY", "TURNS 17 TOMORROW"
    r"|\b(\d{1,2})(?:ST|ND|RD|TH)\s+(?:BIRTHDAY|BDAY|B\s*DAY)\b"
    # "WHOS 16", "HES 15 OR 16", "THEYRE 16", "BOTH 16", "TURNED 15", "AGES 15-16", "AGED 16".
    r"|\b(?:WHOS|HES|SHES|THEYRE|BOTH|TURNED|AGES|AGED|UNDER|EVEN)\s+(\d{1,2})\b"
    r"|\b(\d{1,2})\s+(?:AND|OR|-)\s+\d{1,2}\s*(?:YRS?|YEARS?|YO|YOA)\b"
)


@dataclass(frozen=True)
class Token:
    """One word of a field, with the clause it belongs to and its offset in the original."""

    text: str
    clause: int
    start: int
    end: int


@dataclass(frozen=True)
class Field:
    """A normalised text field: its tokens, the original (upper-cased) text and ages found."""

    name: str
    raw: str
    tokens: tuple[Token, ...]
    ages: tuple[tuple[int, int, int], ...]  # (age, start, end) offsets in raw

    def span(self, first: int, last: int) -> str:
        """The original text from token ``first`` to token ``last`` (inclusive)."""
        return self.raw[self.tokens[first].start : self.tokens[last].end]


def fold_unicode(text: str) -> str:
    """Compatibility forms folded (full-width letters, ligatures), accents dropped,
    zero-width and other format or control characters removed (line breaks become
    spaces), so that a word means what it looks like."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category == "Mn" or category == "Cf":
            continue
        kept.append(" " if category in ("Cc", "Zl", "Zp") else char)
    return unicodedata.normalize("NFKC", "".join(kept))


# Key-question answers as medical-priority dispatch writes them: "CONSCIOUS: N",
# "WEAPONS: NO", "BREATHING: Y". A negative answer reads "NOT CONSCIOUS", a positive one
# the word alone; each answer ends its clause.
# "VIOLENT - N,", "WEAPONS? NO." count too, when the answer ends its clause ("ETOH - NO
# DRUGS" is not an answer).
# A speaker's label ("TXT: NO", "CT: ANY WEAPONS") is not a question.
_SPEAKER = r"(?!(?:TXT|TEXT|CT|RP|CALLER|PT|DISP|DISPATCH|REPLY|UPDT|UPDATE|NOTE|NOTES|KQ|SMS)\b)"
# The answer must end its item ("WEAPONS: NO IDEA" and "WEAPONS: N/K" are not answers).
_ANSWER_END = (
    r"(?![/\w])(?=\s*(?:[,.;)]|$|\s+[A-Z][A-Z0-9/]*\s*[:=])"
    # "WEAPONS: NONE SEEN", "WEAPONS: NO PER RP": how it is known (never where: "NONE ON
    # HIM" leaves the one in his truck)
    r"|\s+(?:SEEN|NOTED|REPORTED|KNOWN|PER (?:RP|CALLER|PT))(?=\s*(?:[,.;)]|$)))"
)
# An answer that goes on to take itself back is not one: "WEAPONS? NO, HE HAS ONE IN THE
# TRUCK", "WEAPONS: NONE. ITS ON THE TABLE", "KNIFE? NO WAIT YES".
_TAKEN_BACK = (
    r"(?!\s*[,.;]?\s*(?:IT|ITS|ONE|BUT|WAIT|YES|YEAH|ACTUALLY|HAS|HAD|ON|IN|AT|UNDER|MY|HIS|"
    r"HER|THE|HE HAS|SHE HAS|THEY HAVE|HE HAD|SHE HAD|HE GOT|SHE GOT)\b)"
)
_ANSWER_NO = re.compile(
    rf"\b{_SPEAKER}([A-Z][A-Z0-9/]*)\s*[:=]\s*(?:N|NO|NEG|NEGATIVE|NONE){_ANSWER_END}"
    rf"{_TAKEN_BACK}"
)
_ANSWER_YES = re.compile(
    rf"\b{_SPEAKER}([A-Z][A-Z0-9/]*)\s*[:=]\s*(?:Y|YES|POS|POSITIVE){_ANSWER_END}"
)
# A list of questions, each item its whole question: "KQ: SUICIDAL - N, THOUGHTS OF HARMING
# OTHERS - N, ALERT - Y", "WEAPONS? NO." or "KQ: AWAKE Y. VIOLENT N. WEAPONS N." reads "NOT
# THOUGHTS OF HARMING OTHERS,". The answer must end its item or come just before the next
# question ("WEAPONS? NO AGE? 34"); "ETOH - NO DRUGS" is not an answer. An item is at most six
# words and never holds an answer word itself.
_WORD = (
    r"(?!(?:YES|NO|Y|N|NEG|POS|IS|ARE|WAS|WERE|DID|DOES|DO|CAN|HAS|HAVE|HAD|WILL|WOULD|"
    r"THE|IT|ITS|OVER|STILL|GONE|SAFE|AND|WALKING|HEADED|HEADING|RUNNING|GOING|DRIVING|"
    r"DROPPED|DOWN|STOPPED|AWAY|SECURED|LOCKED|UNLOADED|PUT|DONE|ENDED|FINISHED|CALM|CALMED|"
    r"FROM|TO|TOWARD|TOWARDS|AT|INTO|KQ|KQS|TC|CT|TXT|ON|IN|UNDER|HIS|HER|THEIR|MY|BEHIND|"
    r"INSIDE|OUTSIDE)\b)"
    r"[A-Z][A-Z0-9/]*"
)
_ENDS = rf"(?=\s*(?:[,.;)]|$)|\s+{_WORD}(?: {_WORD}){{0,3}}\?)"
_ITEM_NO = re.compile(
    rf"(?<![^\s,.;:(?])({_WORD}(?: {_WORD}){{0,5}})\s*(?:-|\u2013|\u2014|\?)\s*"
    rf"(?:N|NO|NEG|NEGATIVE|NONE)\b{_ENDS}{_TAKEN_BACK}"
)
_ITEM_YES = re.compile(
    rf"(?<![^\s,.;:(?])({_WORD}(?: {_WORD}){{0,5}})\s*(?:-|\u2013|\u2014|\?)\s*"
    rf"(?:Y|YES|POS|POSITIVE)\b{_ENDS}"
)
# A short item answered by a bare Y or N after a full stop, comma or colon.
_BARE_NO = re.compile(rf"(?:(?<=[.,;:])|^)\s*({_WORD}(?: {_WORD}){{0,3}})\s+(?:N|NO)\b{_ENDS}")
_BARE_YES = re.compile(rf"(?:(?<=[.,;:])|^)\s*({_WORD}(?: {_WORD}){{0,3}})\s+(?:Y|YES)\b{_ENDS}")


# "NOBODY HAS TOUCHED HIM", "NO ONE HAD A GUN": the auxiliary between the negation and what
# it negates would end the negation's reach (HAS is a terminator: "NO ID, HAS A KNIFE").
_NOBODY_HAS = re.compile(
    r"\b(NOBODY|NO ONE|NOONE|NOBODYS)\s+(?:HAS|HAD|HAVE)\s+"
    r"(?=(?:TOUCHED|LAID|PUT|HIT|BEEN|THREATENED|MENTIONED|SAID|STOOD|GOTTEN|GOT|HURT|SEEN|"
    r"HEARD|SWUNG|THROWN|PUSHED|GRABBED|STRUCK|PUNCHED|SLAPPED|KICKED|SHOVED)\b)"
    # ... unless the clause goes on to say when it did ("NOBODY HAS HIT HIM SINCE")
    r"(?![^.,;!?]*\b(?:SINCE|AGAIN|ANYMORE|YET|BEFORE|TILL|TIL|UNTIL)\b)"
)


# " / " between quoted messages or items ("TXT: HES UP / CT: ANY WEAPONS / TXT: NO") ends a
# clause like a semicolon; "W/M" is untouched.
_SPACED_SLASH = re.compile(r"\s+/+\s+")
# A text relay's reply arrows ("CT: ANY WEAPONS? >> 'NO'") are spaces: a question mark
# already ends the question, and an arrow inside a message must not cut it
# ("HE NEVER HIT MY MOM >> TILL TONIGHT").
_ARROW = re.compile(r"\s*(?:>>|->|=>)\s*")
# "VIOLENCE/WEAPONS: NO": each of the items asked about is answered.
_ITEMS = re.compile(r"NOT ([A-Z0-9/ ]+),")


def _each_item(match: re.Match[str]) -> str:
    return "NOT " + match.group(1).replace("/", " OR ") + ","


# Psychiatric key questions: "SI: N, HI: Y" are suicidal and homicidal ideation.
_IDEATION = re.compile(r"\b(SI|HI)(?=\s*(?:[:=?]|\s-)\s*(?:Y|YES|N|NO|POS|NEG)\b)")


# "DOB 04/02/2010": the age it gives today is read like a stated age ("... AGE 16").
_DOB = re.compile(r"\bD\.?O\.?B\.?[:\s]*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})\b")
_DOB_ISO = re.compile(r"\bD\.?O\.?B\.?[:\s]*(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})\b")


def _with_age(match: re.Match[str]) -> str:
    return _with_age_of(match, int(match.group(1)), int(match.group(2)), int(match.group(3)))


def _with_age_of(match: re.Match[str], month: int, day: int, year: int) -> str:
    today = date.today()
    if year < 100:
        year += 2000 if year <= today.year % 100 else 1900
    if not (1 <= month <= 12 and 1 <= day <= 31) or year > today.year:
        return match.group(0)
    age = today.year - year - ((today.month, today.day) < (month, day))
    return f"{match.group(0)} AGE {age}" if 0 <= age < 100 else match.group(0)


# "32YOM", "16YOF": the age and its unit apart, so both are read.
_AGE_GLUED = re.compile(r"\b(\d{1,3})(YOA|YOM|YOF|YO)\b")
# "16YRS" is an age ("CLEAN 8YRS" read as one costs a review, never a missed juvenile).
_YEARS_GLUED = re.compile(r"\b(\d{1,3})(?:YRS|YR)\b")
# "OD'D", "OD'ED": an overdose, before apostrophes go ("ODD" is another word).
_OD_PAST = re.compile(r"\bOD['`\u2019](?:D|ED)\b")


# What comes after a "no" can take it back or put the thing elsewhere ("WEAPONS? NO. THERES
# ONE IN HIS TRUCK", "ANY WEAPONS? NO. WIFE DOES", "NO, IN THE CAR", "NO ... NOT SURE"). One
# judgment, used wherever a "no" is read (key-question items, answers to questions, "WEAPONS
# NEGATIVE"): it looks at how each following clause opens, at words that point back at the
# thing (IT, ONE standing alone), at hedges, and at a short clause that ends on a verb that
# stands for the thing ("HIS BROTHER DOES"). Ordinary news after the answer ("HUSBAND EN
# ROUTE ON FOOT", "SHE IS STILL CRYING") does not take it back.
OPENS_ELSEWHERE = frozenset(
    {"ON", "IN", "AT", "UNDER", "BEHIND", "INSIDE", "OUTSIDE", "NEXT", "BY", "NEAR", "UP",
     "DOWN", "OVER", "THE", "BUT", "WAIT", "YES", "YEAH", "YA", "YEP", "ACTUALLY", "EXCEPT",
     "ONLY", "STILL", "MAYBE", "THERES", "THERE", "FOR", "THEYRE", "THEY", "MY", "HIS",
     "HER", "HERS", "THEIR", "SOMEWHERE", "ELSEWHERE", "WELL", "HOLD", "OH", "UMM", "UM",
     "THATS", "THAT", "THESE", "THOSE", "SOME", "ALL", "EVERYTHING", "A", "AN", "ANOTHER",
     "OTHER", "OTHERS", "UPSTAIRS", "DOWNSTAIRS"}
)  # fmt: skip
POINTS_BACK = frozenset({"IT", "ITS", "THEM", "THOSE", "EXCEPT", "ACTUALLY", "WAIT", "ELSEWHERE"})
HEDGES = frozenset(
    {"KNOW", "THINK", "GUESS", "PROBABLY", "SURE", "IDEA", "UNSURE", "UNKNOWN", "UNK", "MAYBE",
     "POSSIBLY", "MIGHT", "BELIEVE", "ASSUME", "UNCLEAR", "UNCONFIRMED", "RECALL", "REMEMBER"}
)  # fmt: skip
STANDS_FOR_IT = frozenset(
    {"DOES", "DID", "DO", "HAS", "HAD", "HAVE", "IS", "ARE", "WAS", "WERE", "MIGHT", "MAY",
     "CAN", "COULD", "WILL", "WOULD", "SHOULD", "MUST", "TOO", "ALSO", "THOUGH"}
)  # fmt: skip
# After HAS/HAD/GOT/KEEPS, what makes it a having of a thing ("HE HAS ONE", "SON HAS A
# RIFLE"); not "HAS BEEN DRINKING", "HAS NOT".
_HAVING = frozenset({"HAS", "HAD", "HAVE", "GOT", "KEEPS", "KEEP", "KEPT", "CARRIES", "OWNS"})
_A_THING = frozenset(
    {"ONE", "IT", "SOME", "THEM", "A", "AN", "TWO", "THREE", "SEVERAL", "HIS", "HER", "THEIR",
     "PLENTY", "LOTS", "COUPLE", "FEW", "MORE", "ANOTHER", "THOSE", "THESE", "THAT", "THIS"}
)  # fmt: skip
# "DADS IS IN HIS TRUCK", "THEYRE UP IN THE ATTIC": the thing said to be somewhere.
_BEING = frozenset({"IS", "ARE", "WAS", "WERE", "BE", "STAYS", "SITS", "KEPT", "STORED"})
_PLACES = frozenset(
    {"IN", "ON", "AT", "UNDER", "BY", "BEHIND", "INSIDE", "OUTSIDE", "UPSTAIRS", "DOWNSTAIRS",
     "OUT", "UP", "DOWN", "OVER", "NEAR", "NEXT", "WITH"}
)  # fmt: skip
# ONE as a pronoun (for the thing), not a number before a noun ("ONE SUBJ WALKED OFF").
_AFTER_PRONOUN_ONE = frozenset(
    {"IN", "ON", "AT", "UNDER", "BEHIND", "INSIDE", "OUTSIDE", "THOUGH", "THAT", "TOO", "ALSO",
     "SOMEWHERE", "LEFT", "NEARBY", "HIDDEN", "THERE", "HERE", "NOW", "BUT", "WITH", "UP",
     "OUT", "TO", "DOWN", "AWAY", "OFF", "FROM", "INTO"}
)  # fmt: skip


def takes_back(clauses: Sequence[Sequence[str]]) -> bool:
    """Whether the clauses after a negative answer (each a list of words, in order) take
    the answer back or move the thing elsewhere rather than go on to other news."""
    opening = True
    for words in clauses:
        if not words:
            continue
        if opening and (
            words[0] in OPENS_ELSEWHERE
            or words[0] in _HAVING
            or words[0].isdigit()
            or (words[0] == "NOT" and len(words) > 1 and words[1] in _NOT_THERE)
        ):
            return True  # "NO, IN THE CAR", "NO. HAS ONE", "NO, 2 IN THE CLOSET"
        opening = False
        if set(words) & (POINTS_BACK | HEDGES):
            return True
        if words[-1] in STANDS_FOR_IT:  # "WIFE DOES", "THE UNCLE DOWNSTAIRS DOES"
            return True
        for i, word in enumerate(words):
            after = words[i + 1] if i + 1 < len(words) else None
            if word in _HAVING and after is not None and (after in _A_THING or after.isdigit()):
                return True  # "HE HAS ONE", "HUSB HAS 3 IN THE SAFE"
            if word == "ONE" and (after is None or after in _AFTER_PRONOUN_ONE):
                return True
            if word in _BEING and after in _PLACES and i <= 2:
                return True  # "DADS IS IN HIS TRUCK"
    return False


# "NO, NOT ON HIM", "NOT NOW", "NOT ANYMORE": not there, or not now.
_NOT_THERE = frozenset(
    {"ON", "IN", "AT", "UNDER", "WITH", "HERE", "NOW", "ANYMORE", "YET", "SURE", "RIGHT",
     "THAT", "THIS", "TODAY", "TONIGHT", "CURRENTLY", "INSIDE", "OUTSIDE"}
)  # fmt: skip


_CLAUSE_BREAK = re.compile(r"[.;!?,:]")


def clauses_after(text: str, sentences: int = 2) -> list[list[str]]:
    """The words of the clauses in the rest of ``text``'s sentence and the next one."""
    rest = " ".join(re.split(r"[.;!?]", text, maxsplit=sentences)[:sentences])
    return [re.findall(r"[A-Z0-9]+", part) for part in _CLAUSE_BREAK.split(rest)]


# An item that asks about a state, not whether there is any ("KNIFE REMOVED? NO", "GUN
# EMPTY? NO", "FIGHT BROKE UP? NO", "GUN OUT OF HOUSE? NO"): a "no" there keeps the danger.
STATE_WORDS = frozenset(
    {"REMOVED", "EMPTY", "BROKE", "BROKEN", "OUT", "ELSEWHERE", "WITH", "AWAY", "GONE",
     "SECURE", "SECURED", "LOCKED", "UNLOADED", "PUT", "DOWN", "OVER", "STOPPED", "DROPPED",
     "LEFT", "OFF", "TAKEN", "HIDDEN", "STORED", "NOW", "STILL", "ELSE", "NEIGHBOR", "UP",
     "CLEAR", "CLEARED", "SEIZED", "TURNED", "GIVEN", "HANDED", "OUTSIDE", "INSIDE", "HOUSE",
     "HOME", "TRUCK", "CAR", "VEHICLE", "FOUND", "FOR", "ACCOUNTED", "DISCARDED", "KEPT"}
)  # fmt: skip


def _item_no(match: re.Match[str]) -> str:
    """An item answered no ("WEAPONS? NO", "VIOLENT - N") read as denied: only an item that
    asks whether there is any, and only when the rest of its sentence and the next say
    nothing that takes it back."""
    item = match.group(1)
    words = item.split()
    # A state asked about ("KNIFE DISCARDED?", "WEAPONS ACCOUNTED FOR?", "GUN FOUND?").
    stated = set(words) & STATE_WORDS or any(w.endswith("ED") for w in words[1:])
    if stated or takes_back(clauses_after(match.string[match.end() :])):
        return match.group(0)
    return f"NOT {item},"


# A question whose "no" is the danger: "DO YOU FEEL SAFE? NO", "SCENE SAFE: N", "CALM N".
_INVERTED = re.compile(
    r"\b(SAFE|CALM|COOPERATIVE|COOP)\s*(?:[?:=-]\s*|\s+)(?:N|NO|NEG|NEGATIVE)\b(?!\s+[A-Z]+\?)"
)
_INVERTED_AS = {"SAFE": "UNSAFE,", "CALM": "AGITATED,", "COOPERATIVE": "UNCOOPERATIVE,",
                "COOP": "UNCOOPERATIVE,"}  # fmt: skip


# Abbreviations written with a slash ("D/V", "S/I", "H/I", "O/D"): read as one word.
_SLASHED = re.compile(
    r"\b(D/V|S/I|H/I|O/D|D/C|A/O|N/V|A/A|E/D|A/B|B/E|M/V/A|M/V/C|D/U/I|D/W/I|O/D/D)\b"
)
_SLASHED_AS = {"A/B": "ASSAULT AND BATTERY", "B/E": "B AND E"}


# "KQ VIOLENT N, WEAPONS N": the key questions' label opens a list like "KQ:" does.
_KQ_LABEL = re.compile(r"\b(KQS?|KEY QUESTIONS?)\b(?!\s*[:=-])")


def normalise(text: str) -> str:
    """Unicode folded, upper-case, apostrophes dropped ("OD'ING" -> "ODING"), ``&``
    spelled out, key-question answers read ("CONSCIOUS: N" -> "NOT CONSCIOUS,")."""
    upper = _OD_PAST.sub("ODED", fold_unicode(text).upper())
    upper = _APOSTROPHE.sub("", upper).replace("&", " AND ")
    upper = _AGE_GLUED.sub(r"\1 \2", upper)
    upper = _YEARS_GLUED.sub(r"\1 YRS OLD", upper)
    upper = _SPACED_SLASH.sub(" ; ", upper)
    upper = _ARROW.sub(" ", upper)
    upper = _DOB_ISO.sub(
        lambda m: _with_age_of(m, int(m.group(2)), int(m.group(3)), int(m.group(1))), upper
    )
    upper = _DOB.sub(_with_age, upper)
    upper = _SLASHED.sub(lambda m: _SLASHED_AS.get(m.group(1), m.group(1).replace("/", "")), upper)
    upper = _IDEATION.sub(lambda m: "SUICIDAL" if m.group(1) == "SI" else "HOMICIDAL", upper)
    upper = _NOBODY_HAS.sub(r"\1 ", upper)
    upper = _INVERTED.sub(lambda m: _INVERTED_AS[m.group(1)], upper)
    upper = _KQ_LABEL.sub(r"\1:", upper)
    if len(_BARE_NO.findall(upper)) + len(_BARE_YES.findall(upper)) >= 2:
        upper = _BARE_NO.sub(lambda m: " " + _item_no(m), upper)
        upper = _BARE_YES.sub(r" \1,", upper)
    upper = _ITEM_NO.sub(_item_no, upper)
    upper = _ITEM_YES.sub(r"\1,", upper)
    upper = _ANSWER_NO.sub(_item_no, upper)
    upper = _ITEMS.sub(_each_item, upper)
    return _ANSWER_YES.sub(r"\1,", upper)


def spelled_out(word: str, known: Collection[str]) -> str:
    """A shortened spelling read as the known word it shortens: "NODDIN" -> "NODDING",
    "TALKIN" -> "TALKING". Unknown words stay as they are."""
    if word in known or len(word) < 4:
        return word
    if word.endswith("IN") and word + "G" in known:
        return word + "G"
    return word


def tokenise(
    name: str,
    text: str,
    abbreviations: Mapping[str, Sequence[str]] | None = None,
    known: Collection[str] = (),
) -> Field:
    """Split ``text`` into tokens, expanding shorthand; punctuation only separates clauses.
    With ``known`` words, shortened spellings of them are read in full."""
    raw = normalise(text)
    tokens: list[Token] = []
    clause = 0
    for match in _TOKEN.finditer(raw):
        word = match.group()
        if word in CLAUSE_PUNCTUATION:
            clause += 1
            continue
        expansion = abbreviations.get(word) if abbreviations else None
        if expansion is None and known:
            word = spelled_out(word, known)
        for part in expansion or (word,):
            tokens.append(Token(part, clause, match.start(), match.end()))
    ages = tuple(
        (int(next(g for g in m.groups() if g)), m.start(), m.end()) for m in _AGE.finditer(raw)
    )
    return Field(name, raw, tuple(tokens), ages)
