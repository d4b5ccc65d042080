"""Build src/corespond/triage/dictionary.txt: English words with no sense of harm.

Triage understands a word only if the rule file accounts for it. Beside the hand-kept
vocabulary, this dictionary gives it the long tail of ordinary English (KARAOKE, BLEACHERS,
CARPORT) so that a call is not sent to review for naming a place or a pastime. A word is
taken only when *no* sense of it, in any part of speech, is harm: WordNet's senses are
read, and a word is dropped if any of them is a verb of bodily contact or competition, or
lies under a root of harm (weapon, injury, crime, attack, restraint, driving, selling,
throwing, dying ... see HARM_ROOTS). Words WordNet does not know are dropped, except
capitalised names (places, people). The rule file's ``vocabulary.never_safe`` list (street
and slang senses WordNet lacks: BURNER, STRAP, HEAT ...) is removed again when the rules
are compiled, so the dictionary can never override it.

Inputs, both from Debian: ``wamerican`` (/usr/share/dict/american-english) and
``wordnet-base`` (WordNet 3.0, /usr/share/wordnet), read with NLTK (``pip install -e
'.[data-build]'``). The output is sorted, one word a line: rebuilding gives the same file.

    python tools/build_dictionary.py            # write the packaged file
    python tools/build_dictionary.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

WORDS = Path("/usr/share/dict/american-english")
WORDNET = Path("/usr/share/wordnet")
OUT = Path(__file__).resolve().parents[1] / "src" / "corespond" / "triage" / "dictionary.txt"

# Whole lexicographer files of harm: every verb of touching and of fighting.
HARM_LEXNAMES = {"verb.contact", "verb.competition"}
# Roots whose every hyponym is dropped. Broad on purpose: a harmless word lost here costs
# a review; a harmful word kept could cost a peer's safety.
HARM_ROOTS = [
    # weapons and what they fire
    "weapon.n.01", "weaponry.n.01", "ammunition.n.01", "explosive.n.01",
    "explosive_device.n.01", "projectile.n.01", "instrument.n.01", "implement.n.01",
    "restraint.n.06",
    # violence, crime, injury, death
    "violence.n.01", "aggression.n.01", "aggression.n.02", "attack.n.01", "attack.n.02",
    "fight.n.01", "fight.n.02", "conflict.n.01", "crime.n.01", "wrongdoing.n.02",
    "injury.n.01", "wound.n.01", "harm.n.01", "harm.n.02", "killing.n.02", "death.n.01",
    "suicide.n.01", "self-destruction.n.01", "shooting.n.01", "gunfire.n.01",
    "explosion.n.01", "fire.n.01", "fire.n.04", "confinement.n.02", "captivity.n.01",
    "threat.n.01", "threat.n.02", "robbery.n.01", "theft.n.01", "sale.n.01", "sale.n.02",
    "traffic.n.03", "collision.n.01", "accident.n.02", "vehicle.n.01", "blood.n.01",
    "body_part.n.01", "bodily_process.n.01",
    # verbs of harm, restraint, taking, selling, driving, throwing, dying
    "injure.v.01", "hurt.v.05", "harm.v.01", "kill.v.01", "kill.v.02", "destroy.v.01",
    "destroy.v.02", "damage.v.01", "break.v.02", "break.v.05", "burn.v.01", "attack.v.01",
    "attack.v.02", "assail.v.01", "threaten.v.01", "threaten.v.02", "restrain.v.01",
    "restrain.v.02", "confine.v.01", "confine.v.02", "confine.v.03", "hold.v.02",
    "immobilize.v.01", "immobilize.v.02", "tie.v.01", "bind.v.01", "choke.v.01",
    "choke.v.02", "strangle.v.01", "suffocate.v.01", "kidnap.v.01", "rob.v.01", "steal.v.01",
    "sell.v.01", "sell.v.02", "deal.v.10", "traffic.v.01", "drive.v.01", "drive.v.02",
    "crash.v.01", "collide.v.01", "shoot.v.01", "shoot.v.02", "fire.v.02", "explode.v.01",
    "detonate.v.01", "stab.v.01", "cut.v.01", "throw.v.01", "propel.v.01", "push.v.01",
    "pull.v.01", "pull.v.04", "die.v.01", "move.v.02", "displace.v.03", "force.v.01",
    "force.v.02", "abuse.v.01", "abuse.v.02", "molest.v.01", "rape.v.01", "strike.v.01",
    "hit.v.02", "hit.v.03", "beat.v.02", "fight.v.01", "fight.v.02", "quarrel.v.01",
]  # fmt: skip

_PLAIN = re.compile(r"[A-Za-z]+")


def _wordnet(root: Path) -> Any:
    """NLTK's reader over Debian's WordNet 3.0 files (which lack NLTK's ``lexnames``)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    warnings.filterwarnings("ignore", module="nltk")
    copy = Path(tempfile.mkdtemp(prefix="wordnet-"))
    for path in root.iterdir():
        if path.is_file():
            shutil.copy(path, copy / path.name)
    names = [
        "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal",
        "noun.artifact", "noun.attribute", "noun.body", "noun.cognition",
        "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
        "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon",
        "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
        "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body",
        "verb.change", "verb.cognition", "verb.communication", "verb.competition",
        "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
        "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather",
        "adj.ppl",
    ]  # fmt: skip
    pos = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
    (copy / "lexnames").write_text(
        "".join(f"{i:02d}\t{n}\t{pos[n.split('.')[0]]}\n" for i, n in enumerate(names))
    )
    nltk.data.path.append(str(copy))
    # Debian's files are WordNet 3.0 itself: nothing to map to it.
    WordNetCorpusReader.map_wn = lambda self, version=None: None  # type: ignore[method-assign]
    return WordNetCorpusReader(str(copy), None)


def harmful_synsets(wordnet: Any) -> set[Any]:
    found: set[Any] = set()
    for name in HARM_ROOTS:
        synset = wordnet.synset(name)
        found.add(synset)
        found.update(synset.closure(lambda s: s.hyponyms() + s.instance_hyponyms()))
    return found


def dictionary(words: Iterable[str], wordnet: Any) -> list[str]:
    """The words of ``words`` with no harmful sense, upper case, sorted, unique."""
    harm = harmful_synsets(wordnet)
    kept: set[str] = set()
    dropped: set[str] = set()
    for word in words:
        if not _PLAIN.fullmatch(word):
            continue
        senses = wordnet.synsets(word.lower())
        upper = word.upper()
        if any(s.lexname() in HARM_LEXNAMES or s in harm for s in senses):
            dropped.add(upper)
        elif senses or word[0].isupper():
            kept.add(upper)
    return sorted(kept - dropped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    for needed, package in ((WORDS, "wamerican"), (WORDNET / "data.noun", "wordnet-base")):
        if not needed.exists():
            print(f"{needed} is missing: apt-get install {package}", file=sys.stderr)
            return 2
    words = WORDS.read_text("utf-8", errors="replace").split()
    text = "\n".join(dictionary(words, _wordnet(WORDNET))) + "\n"
    if args.check:
        if OUT.read_text("utf-8") != text:
            print(f"{OUT} is out of date: python tools/build_dictionary.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, "utf-8")
    print(f"{OUT}: {text.count(chr(10))} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
