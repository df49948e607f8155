"""One template for many people: render once with placeholders, then fill each person in.

A round renders the same nudge for every person; only the first name and the unsubscribe link
differ (the deadline differs by timezone, and is part of what is shared). Jinja spends most of its
time per render building contexts and walking the template, so a round for 100 000 people renders
each (template, shared context) once with placeholders in the personal slots and then joins strings.

Filling in is exactly what rendering would have printed, and this is proved rather than hoped:
- a template qualifies only if every use of a personal variable, in it and in everything it includes
  or extends, is printed as it is (`{{ first_name }}`: no filter, no expression around it) or tested
  alone (`{% if unsubscribe_url %}`), and nothing captures printed output to change it later (filter
  blocks, macros, call blocks, block assignments, imports); anything else (a filter, a comparison,
  an assignment, an include whose name is computed) renders normally every time;
- personal values must be non-empty strings (so a bare test takes the same branch as the placeholder);
- the first person filled in from a new entry is also rendered normally and the two compared; a
  difference renders that entry normally from then on.
A context is shared only if its values are strings, numbers, dates or datetimes (a datetime's zone is
part of the key: the same instant prints differently in two zones); mail carrying lists of posts
renders normally. An entry is built the second time its context is seen, so contexts that never
repeat (a follow-up quoting each person's own answer) cost one dictionary look-up, not a second render.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, cast
from weakref import WeakKeyDictionary

import jinja2
from jinja2 import nodes
from markupsafe import escape

#: the variables that differ per person in mail to a person
PERSONAL = ("first_name", "unsubscribe_url")
#: (template, shared context) entries kept per environment
ENTRIES = 256
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters: never in templates, untouched by escaping
_SLOT_RE = re.compile(f"{_OPEN}([a-z_]+){_CLOSE}")

Render = Callable[[str, Mapping[str, Any]], tuple[str, str]]
#: text parts and slot names, alternating (`re.split` with a group): literal, name, literal, ...
_Split = tuple[str, ...]
_SEEN = object()  # an entry's context was seen once: build it if it comes again


class SlotRenderer:
    """Renders `<name>.txt.j2` and `<name>.html.j2` for one person, from a cache where it can."""

    def __init__(self, env: jinja2.Environment) -> None:
        self._env = env
        self._qualifies: dict[str, bool] = {}
        self._entries: OrderedDict[tuple[Any, ...], object] = OrderedDict()

    def render(self, name: str, context: Mapping[str, Any], slow: Render) -> tuple[str, str]:
        """(text, html), as `slow(name, context)` would return them."""
        personal = {k: context[k] for k in PERSONAL if k in context}
        if not all(isinstance(v, str) and v for v in personal.values()):
            return slow(name, context)
        shared = [(k, _shared(v)) for k, v in context.items() if k not in personal]
        if any(v is _UNSHARED for _, v in shared):  # a list of posts, say: rendered normally
            return slow(name, context)
        key = (name, tuple(sorted(personal)), *sorted(shared, key=lambda kv: kv[0]))
        entry = self._entries.get(key)
        if entry is None:
            self._remember(key, _SEEN)
            return slow(name, context)
        self._entries.move_to_end(key)
        if entry is _SEEN:
            return self._build(key, name, context, personal, slow)
        if entry is False:
            return slow(name, context)
        text, html = cast(tuple[_Split, _Split], entry)
        return _fill(text, personal, html=False), _fill(html, personal, html=True)

    def _build(
        self,
        key: tuple[Any, ...],
        name: str,
        context: Mapping[str, Any],
        personal: dict[str, str],
        slow: Render,
    ) -> tuple[str, str]:
        expected = slow(name, context)
        if not all(
            self._template_qualifies(f"{name}{ext}", frozenset(personal)) for ext in (".txt.j2", ".html.j2")
        ):
            self._remember(key, False)
            return expected
        placeholders = {k: f"{_OPEN}{k}{_CLOSE}" for k in personal}
        text, html = slow(name, {**context, **placeholders})
        entry = (tuple(_SLOT_RE.split(text)), tuple(_SLOT_RE.split(html)))
        if not set(entry[0][1::2]) | set(entry[1][1::2]) <= set(personal):  # placeholder-like text
            self._remember(key, False)  # in a shared value: not ours to fill
            return expected
        filled = (_fill(entry[0], personal, html=False), _fill(entry[1], personal, html=True))
        self._remember(key, entry if filled == expected else False)
        return expected

    def _remember(self, key: tuple[Any, ...], entry: object) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > ENTRIES:
            self._entries.popitem(last=False)

    def _template_qualifies(self, name: str, personal: frozenset[str]) -> bool:
        cache_key = f"{name}|{','.join(sorted(personal))}"
        if cache_key not in self._qualifies:
            self._qualifies[cache_key] = _only_printed_or_tested(self._env, name, personal, {name})
        return self._qualifies[cache_key]


_UNSHARED = object()


def _shared(value: object) -> object:
    """What identifies a shared value in the cache's key: equal keys must print the same. Aware
    datetimes that are the same instant in different zones are equal in Python but print differently,
    and 1 == 1.0 == True: so the type, and a datetime's zone, are part of it. Other types: unshared."""
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), repr(value.tzinfo))
    if value is None or isinstance(value, str | int | float | bool | date):
        return (type(value).__name__, value)
    return _UNSHARED


def _fill(parts: _Split, values: Mapping[str, str], *, html: bool) -> str:
    out = list(parts)
    for i in range(1, len(out), 2):
        value = values[out[i]]
        out[i] = str(escape(value)) if html else value
    return "".join(out)


def _only_printed_or_tested(
    env: jinja2.Environment, name: str, personal: frozenset[str], seen: set[str]
) -> bool:
    """Whether every use of a personal variable in template `name` (and what it includes, extends or
    imports) is a bare `{{ var }}` or a bare `{% if var %}`."""
    try:
        source, _, _ = env.loader.get_source(env, name) if env.loader else ("", None, None)
        tree = env.parse(source)
    except jinja2.TemplateError:
        return False
    if any(True for _ in tree.find_all(_CAPTURING)):  # output that may be changed after it is printed
        return False
    allowed: set[int] = set()
    for output in tree.find_all(nodes.Output):
        allowed.update(id(n) for n in output.nodes if isinstance(n, nodes.Name) and n.name in personal)
    for branch in tree.find_all(nodes.If):
        if isinstance(branch.test, nodes.Name) and branch.test.name in personal:
            allowed.add(id(branch.test))
    if any(n.name in personal and id(n) not in allowed for n in tree.find_all(nodes.Name)):
        return False
    for ref in tree.find_all((nodes.Include, nodes.Extends)):
        target = ref.template  # type: ignore[attr-defined]
        if not isinstance(target, nodes.Const) or not isinstance(target.value, str):
            return False
        if target.value not in seen:
            seen.add(target.value)
            if not _only_printed_or_tested(env, target.value, personal, seen):
                return False
    return True


#: blocks whose printed output is captured and can be changed afterwards (`{% filter truncate %}`, a
#: macro's output filtered where it is called, `{% set x %}…{% endset %}`): not filled in
_CAPTURING = (
    nodes.FilterBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.AssignBlock,
    nodes.Import,
    nodes.FromImport,
)

_RENDERERS: WeakKeyDictionary[jinja2.Environment, SlotRenderer] = WeakKeyDictionary()


def slot_renderer(env: jinja2.Environment) -> SlotRenderer:
    """The environment's renderer (one per environment: its cache lives as long as the templates)."""
    renderer = _RENDERERS.get(env)
    if renderer is None:
        renderer = _RENDERERS[env] = SlotRenderer(env)
    return renderer
