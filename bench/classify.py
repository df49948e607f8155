"""Classification benchmark: the confusion matrix of nudger's verdicts on labelled .eml folders.

    python bench/classify.py DIR [DIR ...] [--repeats N] [--json FILE]

Each DIR holds <label>/<name>.eml (labels such as human_reply, auto_reply, bounce, feedback_report,
malformed, other), or .eml files directly (unlabelled, e.g. the project's own tests/emails: counted by
kind and timed, not scored). Prints, per label, how many messages got each kind, messages/s over the
whole set, and the slowest message (never a crash: every file gets a kind).

Speed is `inspect_message` alone on bytes already in memory, against its ceiling measured in the same
passes over the same bytes: the stdlib's `compat32` parse of each message (`email.message_from_bytes`),
the least any classifier must do with a message. The ratio is nudger's messages/s over the ceiling's.
``--json FILE`` writes one object (``"bench": "classify"``, ``"speed": {...}``, the matrix, the misses)
for bench/run_all.
"""

from __future__ import annotations

import argparse
import email
import json
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from email import policy
from pathlib import Path

from nudger.inspect import inspect_message, inspection_context

#: the kinds each label is right to get (as nudger's policy reads them)
ACCEPTED = {
    "human_reply": {"reply", "command"},
    "auto_reply": {"auto_reply"},
    "bounce": {"bounce"},
    "feedback_report": {"complaint", "command"},
    "command": {"command"},
}
UNLABELLED = "(unlabelled)"
CEILING_IS = "stdlib compat32 parse of the same bytes (email.message_from_bytes)"


def messages(folder: Path) -> list[tuple[str, Path]]:
    """(label, path) for <label>/<name>.eml, or (UNLABELLED, path) for .eml files directly in `folder`."""
    found = [(path.parent.name, path) for path in sorted(folder.glob("*/*.eml"))]
    found += [(UNLABELLED, path) for path in sorted(folder.glob("*.eml"))]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (default 3)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    ctx = inspection_context(None, {})
    today = datetime.now(UTC).date()
    corpus = [(label, path, path.read_bytes()) for folder in args.dirs for label, path in messages(folder)]
    if not corpus:
        print(f"no .eml files in {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    matrix: dict[str, Counter[str]] = defaultdict(Counter)
    misses: list[str] = []
    slowest = (0.0, "")
    seconds = ceiling_seconds = 0.0
    for n in range(max(args.repeats, 1)):
        for label, path, raw in corpus:
            t0 = time.perf_counter()
            result = inspect_message(raw, ctx, today=today)
            elapsed = time.perf_counter() - t0
            seconds += elapsed
            slowest = max(slowest, (elapsed, str(path)))
            if n:
                continue
            kind = str(result["kind"])
            matrix[label][kind] += 1
            right = (
                kind in ACCEPTED.get(label, set()) if label in ACCEPTED else kind not in ("reply", "command")
            )
            if label not in ("malformed", UNLABELLED) and not right:
                misses.append(f"{label}/{path.name}: {kind} ({result['reason']})")
        t0 = time.perf_counter()
        for _, _, raw in corpus:
            email.message_from_bytes(raw, policy=policy.compat32)
        ceiling_seconds += time.perf_counter() - t0
    total = len(corpus) * max(args.repeats, 1)
    per_second = total / seconds if seconds else 0.0
    ceiling = total / ceiling_seconds if ceiling_seconds else 0.0
    kinds = sorted({k for row in matrix.values() for k in row})
    print(f"{'label':16s} " + " ".join(f"{k[:11]:>11s}" for k in kinds))
    for label in sorted(matrix):
        print(f"{label:16s} " + " ".join(f"{matrix[label][k]:>11d}" for k in kinds))
    print(
        f"\n{len(corpus)} messages x {max(args.repeats, 1)}: {per_second:.0f} messages/s; "
        f"slowest {slowest[0] * 1000:.1f} ms ({slowest[1]})"
    )
    print(
        f"ceiling {ceiling:.0f} messages/s ({CEILING_IS}): ratio {per_second / ceiling if ceiling else 0:.3f}"
    )
    for miss in misses:
        print(f"  miss {miss}")
    if args.json:
        figures = {
            "bench": "classify",
            "messages": len(corpus),
            "per_second": round(per_second, 1),
            "slowest_ms": round(slowest[0] * 1000, 2),
            "slowest": slowest[1],
            "speed": {
                "unit": "messages/s",
                "nudger": round(per_second, 1),
                "ceiling": round(ceiling, 1),
                "ratio": round(per_second / ceiling, 4) if ceiling else None,
                "ceiling_is": CEILING_IS,
            },
            "matrix": matrix,
            "misses": misses,
        }
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
