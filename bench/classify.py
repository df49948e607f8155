"""Classification benchmark: the confusion matrix of nudger's verdicts on labelled .eml folders.

    python bench/classify.py DIR [DIR ...]

Each DIR holds <label>/<name>.eml (labels such as human_reply, auto_reply, bounce, feedback_report,
malformed, other). Prints, per label, how many messages got each kind, the bounce details found,
messages/s over the whole set, and the slowest message (never a crash: every file gets a kind).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    ctx = inspection_context(None, {})
    today = datetime.now(UTC).date()
    matrix: dict[str, Counter[str]] = defaultdict(Counter)
    misses: list[str] = []
    slowest = (0.0, "")
    total, started = 0, time.perf_counter()
    for folder in args.dirs:
        for path in sorted(folder.glob("*/*.eml")):
            label = path.parent.name
            t0 = time.perf_counter()
            result = inspect_message(path.read_bytes(), ctx, today=today)
            elapsed = time.perf_counter() - t0
            slowest = max(slowest, (elapsed, str(path)))
            total += 1
            kind = str(result["kind"])
            matrix[label][kind] += 1
            right = (
                kind in ACCEPTED.get(label, set()) if label in ACCEPTED else kind not in ("reply", "command")
            )
            if label != "malformed" and not right:
                misses.append(f"{label}/{path.name}: {kind} ({result['reason']})")
    seconds = time.perf_counter() - started
    kinds = sorted({k for row in matrix.values() for k in row})
    print(f"{'label':16s} " + " ".join(f"{k[:11]:>11s}" for k in kinds))
    for label in sorted(matrix):
        print(f"{label:16s} " + " ".join(f"{matrix[label][k]:>11d}" for k in kinds))
    print(
        f"\n{total} messages in {seconds:.2f}s: {total / seconds:.0f} messages/s; "
        f"slowest {slowest[0] * 1000:.1f} ms ({slowest[1]})"
    )
    for miss in misses:
        print(f"  miss {miss}")
    if args.json:
        args.json.write_text(
            json.dumps({"matrix": matrix, "misses": misses, "per_second": total / seconds}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
