#!/usr/bin/env python3
"""Rewrites the corpus files in their one layout: a scenario's keys on their own lines, one step a line.

Usage: python3 tests/contract/fmt.py [--check]   (--check: exit 1 if a file is not in this layout)
"""

import json
import sys
from pathlib import Path


def compact(v: object) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


def layout(doc: dict[str, object]) -> str:
    lines = ["{", f'  "area": {compact(doc["area"])},', f'  "design": {compact(doc["design"])},', '  "scenarios": [']
    scenarios = doc["scenarios"]
    assert isinstance(scenarios, list)
    for i, s in enumerate(scenarios):
        head = [f'      {compact(k)}: {compact(v)},' for k, v in s.items() if k != "steps"]
        steps = [f"        {compact(step)}" for step in s["steps"]]
        lines += ["    {", *head, '      "steps": [', ",\n".join(steps), "      ]",
                  "    }" + ("," if i + 1 < len(scenarios) else "")]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    stale = []
    for path in sorted(Path(__file__).parent.glob("*.json")):
        text = path.read_text()
        want = layout(json.loads(text))
        if text != want:
            stale.append(path.name)
            if "--check" not in sys.argv:
                path.write_text(want)
    if stale and "--check" in sys.argv:
        print(f"not in the corpus layout (run python3 tests/contract/fmt.py): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
