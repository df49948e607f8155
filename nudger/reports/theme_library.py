"""The keyword library behind report themes: a theme is a name and the word stems that signal it.

Kept small and readable on purpose, so L&D can see why an answer counted towards a theme. A stem
matches a word that starts with it (``"meeting"`` matches "meetings"); a stem written with a space is
a two-word phrase matched on consecutive words (``"one to one"`` needs the three words in order).
English only for now; words that are too general to tell themes apart ("work", "team") are left out.
"""

from __future__ import annotations

THEMES: dict[str, tuple[str, ...]] = {
    "Feedback": ("feedback", "critique", "praise", "review", "appraisal", "one to one", "1:1", "retro"),
    "Meetings": ("meeting", "standup", "stand-up", "agenda", "calendar", "call", "zoom", "teams call"),
    "Workload and time": (
        "workload",
        "busy",
        "overload",
        "deadline",
        "prioriti",
        "priority",
        "time",
        "capacity",
        "overtime",
        "rush",
    ),
    "Focus": ("focus", "distract", "interrupt", "deep work", "concentrat", "notification"),
    "Wellbeing": (
        "stress",
        "burnout",
        "wellbeing",
        "well-being",
        "tired",
        "energy",
        "rest",
        "health",
        "balance",
    ),
    "Learning and growth": (
        "learn",
        "course",
        "training",
        "skill",
        "mentor",
        "coach",
        "career",
        "growth",
        "develop",
        "curious",
    ),
    "Recognition": ("recogni", "thank", "appreciat", "credit", "celebrat", "acknowledg"),
    "Collaboration": ("collaborat", "together", "pair", "help", "support", "cross-team", "handover", "silo"),
    "Communication": (
        "communicat",
        "email",
        "slack",
        "chat",
        "message",
        "update",
        "clarity",
        "inform",
        "listen",
    ),
    "Customers": ("customer", "client", "user", "patient", "service", "complaint"),
    "Tools and process": (
        "tool",
        "process",
        "system",
        "software",
        "automat",
        "workflow",
        "template",
        "spreadsheet",
    ),
    "Leadership and direction": ("manager", "leader", "strategy", "goal", "decision", "direction", "vision"),
    "Change": ("change", "reorg", "restructur", "new role", "transition", "uncertain"),
    "Remote and hybrid": ("remote", "hybrid", "office", "home", "commute", "in person", "onsite"),
    "Trying something new": ("tried", "experiment", "first time", "new approach", "idea", "innovat"),
}

#: words never used in key phrases (and never a theme stem on their own)
_STOPWORD_TEXT = """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing done down during each even ever every few
    for from further get got had has have having he her here hers herself him himself his how i if in
    into is it its itself just let like made make many may me might more most much must my myself no
    nor not now of off on once only or other our ours ourselves out over own really said same see
    she should so some still such than that the their theirs them themselves then there these they
    thing things think this those through to too under until up us very was way we week well were
    what when where which while who whom why will with would yes yet you your yours yourself
    yourselves lot lots bit quite maybe something someone anything nothing everyone one two three
    going went go come came take took use used want wanted need needed try trying feel felt
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
