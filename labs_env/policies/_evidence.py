"""Text heuristics of the scripted baseline, using only what a real client can see.

Inputs are public: the scenario's catalog description, its tools (options, descriptions,
JSON schemas) and the conversation. Nothing here reads scenario files or server internals.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "choose_option",
    "fact_sentences",
    "fill_artifact",
    "investigation_items",
    "sentences",
    "to_second_person",
    "words",
]

_WORD = re.compile(r"[a-z0-9]+")


def _wordlist(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP = _wordlist(
    "a an the and or but if of to in on at by for with from is are was were be been it its "
    "this that these those as not no do does did has have had i you he she they we my your "
    "his her their our me him them us what when which who whom how why where whether there "
    "then than so such can could would should will may might must about into over under "
    "after before out up down any all some more most other also only just very"
)
_ITEM_VERBS = re.compile(
    r"\b(?:find out|establish|ask about|ask|collect|confirm|check|gather|learn)\b\s+(.*?)"
    r"(?:,\s*then\b|\.\s|\.$|;|$)",
    re.IGNORECASE,
)
_SPLIT_ITEMS = re.compile(r"(,\s*and\s+|,\s*|\s+and\s+)")
_WH = frozenset(("what", "when", "which", "who", "how", "whether", "where", "why"))
_ITEM_STARTS = _wordlist(
    "what when which who how whether where why if the his her their your its any a an"
)
_NOT_A_FACT = re.compile(
    r"\b(?:thank|thanks|told you|rather not|appreciate|need from me|ask me|sorry|happens now)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_PRONOUNS = (
    (r"\bshe has\b|\bhe has\b|\bthey have\b", "you have"),
    (r"\bshe is\b|\bhe is\b|\bthey are\b", "you are"),
    (r"\bshe was\b|\bhe was\b|\bthey were\b", "you were"),
    (r"\bher own\b|\bhis own\b", "your own"),
    (r"\bhimself\b|\bherself\b", "yourself"),
    (r"\bhis\b|\btheir\b", "your"),
    (r"\bher\b", "your"),
    (r"\bshe\b|\bhe\b|\bthey\b", "you"),
)
_FIRST_TO_SECOND = (
    (r"\bI'm\b", "you're"),
    (r"\bI've\b", "you've"),
    (r"\bI'd\b", "you'd"),
    (r"\bI was\b", "you were"),
    (r"\bI am\b", "you are"),
    (r"\bI\b", "you"),
    (r"\bmy\b", "your"),
    (r"\bMy\b", "Your"),
    (r"\bme\b", "you"),
    (r"\bwe've\b", "you've"),
    (r"\bwe\b", "you"),
    (r"\bWe\b", "You"),
    (r"\bour\b", "your"),
)
#: Generic evidence categories a case worker knows, and the option words that name them.
_CATEGORIES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "adverse": (
        ("deny", "decline", "reject", "refuse", "ineligible"),
        (
            "not covered",
            "wasn't covered",
            "isn't covered",
            "excluded",
            "lapsed",
            "expired",
            "cancelled",
        ),
    ),
    "missing": (
        ("request", "document", "information", "info"),
        (
            "don't have the",
            "haven't got the",
            "can't find the",
            "lost the",
            "no receipt",
            "haven't sent",
        ),
    ),
    "escalate": (
        ("refer", "investigation", "investigate", "investigator", "escalate", "security"),
        (
            "suspicious",
            "didn't request",
            "did not request",
            "unaccounted",
            "strange",
            "inconsistent",
            "another country",
            "someone else",
            "hacked",
            "phishing",
        ),
    ),
    "urgent": (
        ("p1", "critical", "urgent", "emergency"),
        ("all customers", "for our customers", "customers can't", "nobody can", "losing sales"),
    ),
}
_MONTH_NAMES = (
    "january february march april may june july august september october november december"
)
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES.split(" "))}
_DATE_DMY = re.compile(
    r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(" + "|".join(_MONTHS) + r")\b(?:,?\s+(\d{4}))?",
    re.IGNORECASE,
)
_DATE_MDY = re.compile(
    r"\b(" + "|".join(_MONTHS) + r")\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4}))?",
    re.IGNORECASE,
)
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_NUMBER = re.compile(r"(?<![\w-])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w-])")
_YEAR = re.compile(r"\b(19\d{2}|20\d{2})\b")
_NEGATION = re.compile(r"\b(?:not|no|never|none|nobody|nothing)\b|n't\b", re.IGNORECASE)
_ABSENCE = re.compile(
    r"\b(?:not|no|never|none|missing|lost|unaccounted|without)\b|n't\b", re.IGNORECASE
)
_RAW_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-case content words of ``text`` (stop words dropped, plural ``s`` stripped)."""
    found = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP or len(word) < 3:
            continue
        found.append(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return found


def to_second_person(text: str, *, first_person: bool = False) -> str:
    """Rewrite third-person (or, with ``first_person``, first-person) phrasing as "you"."""
    for pattern, replacement in _FIRST_TO_SECOND if first_person else _PRONOUNS:
        text = re.sub(pattern, replacement, text)
    return text


def investigation_items(description: str) -> list[str]:
    """What the catalog description says to find out, as second-person question targets.

    Example:
        >>> investigation_items("Find out his policy number and when the storm hit, then decide.")
        ['your policy number', 'when the storm hit']
    """
    items: list[str] = []
    for match in _ITEM_VERBS.finditer(description):
        pieces = _SPLIT_ITEMS.split(match.group(1).strip(" ,."))
        chunks, separators = pieces[0::2], ["", *pieces[1::2]]
        current = ""
        for i, chunk in enumerate(chunks):
            first = chunk.split()[0].lower() if chunk.split() else ""
            joined_by_and = i + 1 < len(chunks) and separators[i + 1].strip() == "and"
            lone_wh = chunk.strip().lower() in _WH
            starts_item = first in _ITEM_STARTS and not (lone_wh and not joined_by_and)
            if current and starts_item and current.strip().lower() not in _WH:
                items.append(current)
                current = chunk
            else:  # "make, model and registration", "when and where ...", "... and when"
                current += separators[i] + chunk
        items.append(current)
    return list(dict.fromkeys(to_second_person(i.strip()) for i in items if i.strip()))


def sentences(texts: Iterable[str]) -> list[str]:
    """The sentences of ``texts``, in order."""
    return [s.strip() for text in texts for s in _SENTENCE.split(text) if s.strip()]


def fact_sentences(persona_messages: Sequence[str], limit: int = 8) -> list[str]:
    """Sentences of the persona that carry information (not questions, not pleasantries)."""
    chosen = []
    for sentence in sentences(persona_messages[1:] or persona_messages):
        if sentence.endswith("?") or len(sentence.split()) < 5:
            continue
        if _NOT_A_FACT.search(sentence):
            continue  # pleasantries, reluctance, talk about the conversation itself
        chosen.append(sentence)
    return chosen[-limit:] if len(chosen) > limit else chosen


def _option_segments(tool_description: str, options: Sequence[str]) -> dict[str, str]:
    lowered = tool_description.lower()
    marks = sorted(
        (lowered.find(option.lower()), option)
        for option in options
        if lowered.find(option.lower()) >= 0
    )
    segments = {}
    for i, (start, option) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(lowered)
        segments[option] = tool_description[start + len(option) : end]
    return segments


def affirmed_words(text: str) -> set[str]:
    """Content words of ``text`` that are not within three words after a negation."""
    found: set[str] = set()
    for sentence in sentences([text]):
        skip = 0
        for raw in _RAW_WORD.findall(sentence.lower()):
            if _NEGATION.fullmatch(raw) or raw.endswith("n't"):
                skip = 3
                continue
            if skip:
                skip -= 1
                continue
            found.update(words(raw))
    return found


def choose_option(
    options: Sequence[str], tool_description: str, persona_messages: Sequence[str]
) -> tuple[str, str]:
    """The option best supported by what the persona said, and the tool's reason text for it.

    An option scores three points per generic evidence phrase of its category (adverse,
    missing information, escalation, urgency) found in the persona's messages, plus the
    words of its clause in the tool description that the persona affirmed (each weighted by
    1 / the number of clauses sharing it). Clauses stating an absence ("has not been
    provided") only count their category. Ties keep the tool's option order.
    """
    segments = _option_segments(tool_description or "", options)
    evidence = " ".join(persona_messages[1:] or persona_messages).lower()
    affirmed = affirmed_words(evidence)
    clause_words = {
        option: set()
        if _NEGATION.search(segments.get(option, ""))
        else set(words(segments.get(option, "")))
        for option in options
    }
    shares: dict[str, int] = {}
    for cue_set in clause_words.values():
        for cue in cue_set:
            shares[cue] = shares.get(cue, 0) + 1
    best, best_score = options[0], -1.0
    for option in options:
        option_words = set(words(option.replace("_", " ")))
        score = sum(1.0 / shares[cue] for cue in clause_words[option] & affirmed)
        for names, phrases in _CATEGORIES.values():
            if option_words & set(names):
                score += 3.0 * sum(phrase in evidence for phrase in phrases)
        if score > best_score:
            best, best_score = option, score
    reason = segments.get(best, "").strip(" :;,.-")
    return best, reason


def _parse_date(text: str, default_year: int | None) -> str | None:
    iso = _DATE_ISO.search(text)
    if iso:
        return iso.group(0)
    for regex, day_group, month_group in ((_DATE_DMY, 1, 2), (_DATE_MDY, 2, 1)):
        match = regex.search(text)
        if match:
            year = int(match.group(3)) if match.group(3) else default_year
            if year is None:
                continue
            try:
                month = _MONTHS[match.group(month_group).lower()]
                return dt.date(year, month, int(match.group(day_group))).isoformat()
            except ValueError:
                continue
    return None


def _relevant(sentences_: Sequence[str], key: str, schema: Mapping[str, Any]) -> list[str]:
    """Sentences mentioning the field: its name's words count double its description's."""
    name_cues = set(words(key.replace("_", " ")))
    cues = set(words(str(schema.get("description", "")))) | name_cues
    scored = []
    for index, sentence in enumerate(sentences_):
        present = set(words(sentence))
        overlap = len(cues & present) + len(name_cues & present)
        if overlap:
            scored.append((-overlap, index, sentence))
    return [sentence for _, _, sentence in sorted(scored)]


def _numbers(sentence: str) -> list[float]:
    cleaned = _DATE_DMY.sub(" ", _DATE_MDY.sub(" ", sentence))
    found = []
    for match in _NUMBER.finditer(cleaned):
        value = float(
            match.group(1).replace(",", "") + ("." + match.group(2) if match.group(2) else "")
        )
        found.append(value)
    return found


def fill_artifact(schema: Mapping[str, Any], persona_messages: Sequence[str]) -> Any:
    """A value for ``schema`` filled from the persona's messages (best effort, schema-shaped)."""
    facts = fact_sentences(persona_messages, limit=50)
    return _fill(schema, "", facts, " ".join(persona_messages))


def _fill(schema: Mapping[str, Any], key: str, facts: Sequence[str], corpus: str) -> Any:
    kind = schema.get("type")
    if kind == "object":
        result = {}
        for name, sub in (schema.get("properties") or {}).items():
            value = _fill(sub, name, facts, corpus)
            if value is not None or name in schema.get("required", ()):
                result[name] = value
        return result
    relevant = _relevant(facts, key, schema)
    if "enum" in schema:
        present = affirmed_words(" ".join(relevant) or corpus)
        options = schema["enum"]
        return max(
            options,
            key=lambda o: (len(set(words(str(o).replace("_", " "))) & present), -options.index(o)),
        )
    if kind == "array":
        items = schema.get("items") or {"type": "string"}
        chosen = relevant[: schema.get("maxItems", 3)] or facts[:1]
        values = [_fill(items, key, [s], s) for s in chosen]
        while len(values) < schema.get("minItems", 0):
            values.append(values[-1] if values else _fill(items, key, facts, corpus))
        return values
    if kind in ("number", "integer"):
        for sentence in relevant or facts:
            numbers = _numbers(sentence)
            if numbers:
                return int(max(numbers)) if kind == "integer" else max(numbers)
        return schema.get("minimum", 0)
    if kind == "boolean":
        return bool(relevant) and not _ABSENCE.search(relevant[0])
    if schema.get("format") == "date":
        years = _YEAR.findall(corpus)
        for sentence in [*relevant, *facts]:
            parsed = _parse_date(sentence, int(years[0]) if years else None)
            if parsed:
                return parsed
        return None
    if "pattern" in schema:
        regex = re.compile(str(schema["pattern"]).lstrip("^").rstrip("$"))
        match = regex.search(corpus)
        return match.group(0) if match else None
    text = relevant[0] if relevant else " ".join(facts[:3])
    limit = schema.get("maxLength")
    if limit and len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0]
    return text or "not provided"
