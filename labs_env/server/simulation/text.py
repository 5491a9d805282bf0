"""Shared text helpers: normalisation, tokenising and a precompiled phrase index.

Every phrase list of a scenario (trigger words, evidence, empathy markers, scope rules, ...) is
compiled once into a :class:`PhraseIndex`. Matching a message is then one regex tokenisation
plus set look-ups of its word n-grams: no per-phrase scanning on the hot path.

Matching rules: case-insensitive, on word boundaries, punctuation ignored (``"CLM-20931"``
matches ``"clm 20931"``), and a trailing plural ``s`` is ignored on every word (``"claims"``
matches the phrase ``"claim"``).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "CLOSING_MARKERS",
    "EMPATHY_MARKERS",
    "GENERIC_ON_TOPIC",
    "OFF_TOPIC_MARKERS",
    "SUMMARY_MARKERS",
    "Label",
    "PhraseIndex",
    "normalize_phrase",
    "pick",
    "raw_words",
    "tokens",
]

# A byte table: ASCII letters, digits and the apostrophe stay, every other byte becomes a
# space. bytes.translate + split is several times faster than a regex findall.
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789'")
_SEPARATORS = bytes(c if c in _WORD_BYTES else 0x20 for c in range(256))

#: Generic empathy markers (scenarios may add their own).
EMPATHY_MARKERS: tuple[str, ...] = (
    "i understand",
    "i'm sorry",
    "i am sorry",
    "sorry to hear",
    "sorry for",
    "that sounds",
    "frustrating",
    "stressful",
    "i appreciate",
    "thank you for your patience",
    "i can imagine",
    "i can see why",
    "must be",
    "that's difficult",
    "that's hard",
    "understandably",
    "i hear you",
)
#: Generic phrases that close a conversation.
CLOSING_MARKERS: tuple[str, ...] = (
    "goodbye",
    "have a good day",
    "have a great day",
    "have a nice day",
    "take care",
    "i'll close this",
    "i will close this",
    "closing this case",
    "closing the case",
    "closing this ticket",
)
#: Generic phrases that introduce a summary.
SUMMARY_MARKERS: tuple[str, ...] = (
    "to summarise",
    "to summarize",
    "in summary",
    "let me recap",
    "to recap",
    "just to confirm",
    "let me confirm",
    "so far you've told me",
    "let me summarise",
    "let me summarize",
)
#: Generic conversational moves that are on topic in any scenario.
GENERIC_ON_TOPIC: tuple[str, ...] = (
    "anything else",
    "tell me more",
    "go on",
    "help you",
    "can i help",
    "what happened",
    "explain",
    "more detail",
    "more about",
    "thank you",
    "thanks",
    "hello",
    "good morning",
    "good afternoon",
    "next step",
)
#: Generic signs that a message is unrelated small talk.
OFF_TOPIC_MARKERS: tuple[str, ...] = (
    "weather",
    "football",
    "soccer",
    "recipe",
    "favourite movie",
    "favorite movie",
    "holiday plans",
    "crypto",
    "bitcoin",
    "stock tip",
    "horoscope",
    "celebrity",
    "video game",
    "tell you a joke",
    "a joke",
)


_STEMS: dict[str, str] = {}


def _stem(word: str) -> str:
    if word.endswith("'s"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` with the plural ``s`` stripped.

    Example:
        >>> tokens("Two Claims, CLM-20931!")
        ['two', 'claim', 'clm', '20931']
    """
    stems = _STEMS
    if len(stems) > 100_000:
        stems.clear()
    out = []
    for word in raw_words(text):
        stem = stems.get(word)
        if stem is None:
            stem = stems[word] = _stem(word)
        out.append(stem)
    return out


def raw_words(text: str) -> list[str]:
    """Lower-cased words of ``text``: runs of ASCII letters, digits and inner apostrophes
    (curly apostrophes count as straight ones; other non-ASCII characters are dropped)."""
    ascii_text = text.lower().replace("\u2019", "'").encode("ascii", "ignore")
    spaced = b" " + ascii_text.translate(_SEPARATORS) + b" "
    if b"'" in spaced:
        spaced = spaced.replace(b" '", b" ").replace(b"' ", b" ")
    return spaced.decode("ascii").split()


def normalize_phrase(phrase: str) -> str:
    """The canonical form phrases are stored and matched in (tokens joined by one space)."""
    return " ".join(tokens(phrase))


def pick(options: Sequence[str], *key: object) -> str:
    """A deterministic choice among ``options`` from ``key`` (seed, turn, ...).

    Uses CRC-32, so the choice is the same in every process (unlike ``hash``).
    """
    if len(options) == 1:
        return options[0]
    digest = zlib.crc32(":".join(map(str, key)).encode())
    return options[digest % len(options)]


def _surface_forms(word: str) -> tuple[str, ...]:
    """The token spellings that normalise to ``word`` (itself, plural ``s``, possessive)."""
    forms = [word, word + "'s"]
    if _stem(word + "s") == word:
        forms.append(word + "s")
    return tuple(form for form in forms if _stem(form) == word)


#: Very common words: a multi-word phrase is looked up by its least common adjacent pair.
_COMMON_WORDS = (
    "a all an and are as at be but can do for have i i'm i've in is it it's me my of on or so "
    "thank that the this to was we what with you you're your"
)
_COMMON = frozenset(_COMMON_WORDS.split(" "))
#: A phrase's label: (kind, identifier), e.g. ``("trigger", "claim_number")``.
Label = tuple[str, str]


class PhraseIndex:
    """Phrases compiled into word look-up tables, each phrase mapped to labels.

    Matching works on the set of a message's raw tokens: single-word phrases are found by one
    set intersection (every accepted spelling of a word is a key), longer phrases by their
    first word and then a comparison of the following words. The per-token work happens in C.

    Example:
        >>> index = PhraseIndex({"claim number": [("t", "claim")], "sorry": [("empathy", "")]})
        >>> sorted(index.labels("I'm sorry - what's your claim number?"))
        [('empathy', ''), ('t', 'claim')]
    """

    __slots__ = ("_pair_keys", "_pairs", "_single", "_single_keys")

    def __init__(self, phrases: Mapping[str, Iterable[Label]]) -> None:
        single: dict[str, set[Label]] = {}
        pairs: dict[tuple[str, str], dict[tuple[int, tuple[str, ...]], set[Label]]] = {}
        for phrase, labels in phrases.items():
            words = tokens(phrase)
            if not words:
                raise ValueError(f"phrase {phrase!r} has no words")
            if len(words) == 1:
                for form in _surface_forms(words[0]):
                    single.setdefault(form, set()).update(labels)
                continue
            anchor = _anchor(words)
            first, second = words[anchor], words[anchor + 1]
            for spelling in itertools.product(_surface_forms(first), _surface_forms(second)):
                entries = pairs.setdefault(spelling, {})
                entries.setdefault((anchor, tuple(words)), set()).update(labels)
        self._single = {k: frozenset(v) for k, v in single.items()}
        self._single_keys = frozenset(self._single)
        self._pairs = {
            pair: tuple((anchor, words, frozenset(labels)) for (anchor, words), labels in e.items())
            for pair, e in pairs.items()
        }
        self._pair_keys = frozenset(self._pairs)

    def labels(self, text: str) -> frozenset[Label]:
        """All labels of the phrases that occur in ``text``."""
        words = raw_words(text)
        found: set[Label] = set()
        for word in self._single_keys.intersection(words):
            found |= self._single[word]
        for pair in self._pair_keys.intersection(itertools.pairwise(words)):
            for anchor, phrase, labels in self._pairs[pair]:
                if len(phrase) == 2 or _occurs(words, pair, anchor, phrase):
                    found |= labels
        return frozenset(found)


def _anchor(words: list[str]) -> int:
    """The position of the phrase's most distinctive adjacent pair (fewest common words)."""
    scores = [(words[i] in _COMMON) + (words[i + 1] in _COMMON) for i in range(len(words) - 1)]
    return scores.index(min(scores))


def _occurs(words: list[str], pair: tuple[str, str], anchor: int, phrase: tuple[str, ...]) -> bool:
    """Whether ``phrase`` occurs in ``words`` with its anchor pair spelt as ``pair``."""
    size = len(phrase)
    start = 0
    while True:
        try:
            i = words.index(pair[0], start)  # the scan runs in C
        except ValueError:
            return False
        start = i + 1
        begin = i - anchor
        if words[start : start + 1] == [pair[1]] and begin >= 0:
            window = words[begin : begin + size]
            if len(window) == size and all(
                _stem(w) == p for w, p in zip(window, phrase, strict=True)
            ):
                return True
