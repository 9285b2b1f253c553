#!/usr/bin/env python
"""Rewrite the recipe table of README.md (between its figures:begin and figures:end comments) from
deepzoo/figures.json, the one file of reached figures, and the recipes' references; and the recipe index
(deepzoo/recipes/index.json, what `deepzoo list` reads without importing torch) from the registry.

    python scripts/readme_table.py            # rewrite README.md
    python scripts/readme_table.py --check    # exit 1, saying so, if README.md differs from the file
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deepzoo import figures  # noqa: E402
from deepzoo.files import atomic_write_bytes  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if the README is out of date")
    args = ap.parse_args(argv)
    from deepzoo import recipes
    bad = figures.problems(figures.load(), [r.name for r in recipes.all_recipes()])
    if bad:
        print("deepzoo/figures.json:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    if args.check:
        if recipes.index_json() != json.loads(recipes.INDEX.read_text(encoding="utf-8")):
            print(f"{recipes.INDEX}: differs from the recipes; run python scripts/readme_table.py", file=sys.stderr)
            return 1
    elif recipes.write_index():
        print(f"rewrote {recipes.INDEX}")
    old = args.readme.read_text(encoding="utf-8")
    new = figures.replace_block(old, figures.readme_block())
    if args.check:
        if new != old:
            print(f"{args.readme}: the recipe table differs from deepzoo/figures.json; "
                  f"run python scripts/readme_table.py", file=sys.stderr)
            return 1
        print(f"{args.readme}: the recipe table agrees with deepzoo/figures.json")
        return 0
    if new != old:
        atomic_write_bytes(args.readme, new.encode("utf-8"))
        print(f"rewrote the recipe table of {args.readme}")
    else:
        print(f"{args.readme}: already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
