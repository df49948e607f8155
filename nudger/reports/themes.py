"""Themes and key phrases across the period's shared answers (pure; the keyword library is in
`theme_library`; no network, no model).

Only answers their authors shared (with peers or with L&D) are read; private answers never are —
the flow's query leaves them out and `ThemeCounter` is only ever given shared text.

Counting is by *people*: a theme or phrase counts the distinct people whose shared answers mention it,
so one talkative person cannot make a theme. `ThemeCounter.add` must be fed answers grouped by person
(ordered by person id), which lets it count distinct people with one "last person" per theme or phrase
instead of a set of ids, so memory does not grow with the roster. The phrase table is pruned of
one-person phrases when it grows past `max_phrases` (a phrase that only one person used is never
shown anyway).

Anonymity (`shown_themes`): nothing is shown when fewer than the threshold of people shared an answer;
a theme or phrase is shown only when at least the threshold of people mention it. Change since the last
period compares each theme's share of sharing people with the earlier period's, when that period
also passed the threshold; a theme that was under the threshold then is marked as new.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise

from nudger.reports.rules import effective_threshold
from nudger.reports.theme_library import STOPWORDS, THEMES

TOP_THEMES = 8
TOP_PHRASES = 10
_WORD = re.compile(r"[0-9a-z]+(?:[-':][0-9a-z]+)*")
_MIN_PHRASE_WORD = 3
_CACHE_WORDS = 200_000


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class _Library:
    def __init__(self, themes: Mapping[str, tuple[str, ...]]) -> None:
        self.names = list(themes)
        self.single: dict[str, list[tuple[str, int]]] = {}
        self.multi: list[tuple[str, int]] = []
        self._cache: dict[str, tuple[int, ...]] = {}  # word → themes (vocabularies are small)
        for index, name in enumerate(self.names):
            for stem in themes[name]:
                words = stem.lower().split()
                if len(words) == 1:
                    self.single.setdefault(words[0][:3], []).append((words[0], index))
                else:
                    self.multi.append((" " + " ".join(words), index))

    def _themes_of(self, w: str) -> tuple[int, ...]:
        hit = tuple(index for stem, index in self.single.get(w[:3], ()) if w.startswith(stem))
        if len(self._cache) < _CACHE_WORDS:
            self._cache[w] = hit
        return hit

    def match(self, words: list[str]) -> set[int]:
        found: set[int] = set()
        cache = self._cache
        for w in set(words):
            hit = cache.get(w)
            found.update(self._themes_of(w) if hit is None else hit)
        if self.multi:
            joined = " " + " ".join(words) + " "
            for phrase, index in self.multi:
                if index not in found and phrase + " " in joined:
                    found.add(index)
        return found


_LIBRARY = _Library(THEMES)


def key_phrases(words: list[str]) -> set[str]:
    """Two-word phrases of content words (no stopwords, no numbers, words of 3+ letters)."""
    stop = STOPWORDS
    keep = [w if len(w) >= _MIN_PHRASE_WORD and w not in stop and not w.isdigit() else "" for w in words]
    return {f"{a} {b}" for a, b in pairwise(keep) if a and b}


@dataclass(frozen=True)
class ThemeCounts:
    """Raw counts: `people` who shared an answer, `answers` shared; per theme and phrase, distinct people."""

    people: int = 0
    answers: int = 0
    themes: Mapping[str, int] | None = None
    phrases: Mapping[str, int] | None = None


class ThemeCounter:
    """Feed shared answers ordered by person id with `add`; read the counts with `counts`."""

    def __init__(self, max_phrases: int = 50_000, *, phrases: bool = True) -> None:
        self.max_phrases = max_phrases
        self.with_phrases = phrases
        self._people = 0
        self._answers = 0
        self._last_person: int | None = None
        self._themes = [0] * len(_LIBRARY.names)
        self._theme_last = [-1] * len(_LIBRARY.names)
        self._phrases: dict[str, list[int]] = {}  # phrase → [people, last person]

    def add(self, person_id: int, text: str) -> None:
        if self._last_person is not None and person_id < self._last_person:
            raise ValueError("ThemeCounter.add needs answers ordered by person id")
        if person_id != self._last_person:
            self._people += 1
            self._last_person = person_id
        self._answers += 1
        words = tokens(text)
        for index in _LIBRARY.match(words):
            if self._theme_last[index] != person_id:
                self._theme_last[index] = person_id
                self._themes[index] += 1
        for phrase in key_phrases(words) if self.with_phrases else ():
            slot = self._phrases.get(phrase)
            if slot is None:
                self._phrases[phrase] = [1, person_id]
            elif slot[1] != person_id:
                slot[0] += 1
                slot[1] = person_id
        if len(self._phrases) > self.max_phrases:
            self._phrases = {p: s for p, s in self._phrases.items() if s[0] > 1 or s[1] == person_id}
            # if most phrases are shared by several people, let the table grow rather than prune often
            self.max_phrases = max(self.max_phrases, 2 * len(self._phrases))

    def counts(self) -> ThemeCounts:
        return ThemeCounts(
            people=self._people,
            answers=self._answers,
            themes={n: c for n, c in zip(_LIBRARY.names, self._themes, strict=True) if c},
            phrases={p: s[0] for p, s in self._phrases.items() if s[0] > 1},
        )


def count_themes(answers: Iterable[tuple[int, str]]) -> ThemeCounts:
    """Counts for (person id, text) pairs ordered by person id."""
    counter = ThemeCounter()
    for person_id, text in answers:
        counter.add(person_id, text)
    return counter.counts()


@dataclass(frozen=True)
class ThemeRow:
    name: str
    people: int
    share: float
    #: share − earlier share (None: no comparable earlier figure)
    change: float | None
    new: bool


@dataclass(frozen=True)
class Themes:
    """What a report may show. `withheld` is True when too few people shared answers."""

    people: int | None
    themes: tuple[ThemeRow, ...]
    phrases: tuple[tuple[str, int], ...]
    withheld: bool
    compared: bool  # an earlier period that passed the threshold was compared


def shown_themes(now: ThemeCounts, before: ThemeCounts | None, threshold: int) -> Themes:
    n = effective_threshold(threshold)
    if now.people < n:
        return Themes(None, (), (), withheld=True, compared=False)
    compared = before is not None and before.people >= n
    prior = (before.themes or {}) if before is not None and compared else {}
    rows: list[ThemeRow] = []
    for name, people in (now.themes or {}).items():
        if people < n:
            continue
        share = people / now.people
        earlier = prior.get(name, 0)
        if compared and before is not None and earlier >= n:
            change: float | None = share - earlier / before.people
            new = False
        else:
            change, new = None, compared
        rows.append(ThemeRow(name, people, share, change, new))
    rows.sort(key=lambda r: (-r.people, r.name))
    phrases = sorted(((p, c) for p, c in (now.phrases or {}).items() if c >= n), key=lambda x: (-x[1], x[0]))
    return Themes(
        people=now.people,
        themes=tuple(rows[:TOP_THEMES]),
        phrases=tuple(phrases[:TOP_PHRASES]),
        withheld=False,
        compared=compared,
    )
