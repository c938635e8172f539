"""Writes the fuzz corpus seeds (fuzz/corpus/parsers/) from the hand-written fixtures, in the
target's input format: a layout byte, then the layout's files joined by 0xFE."""
import os
here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "tests", "fixtures")
layouts = {
    0: ["movies.csv", "ratings.csv", "links.csv", "tags.csv", "genome-tags.csv", "genome-scores.csv"],
    1: ["movies.dat", "ratings.dat", "tags.dat"],
    2: ["movies.dat", "ratings.dat", "users.dat"],
    3: ["u.genre", "u.item", "u.data"],
}
seeds = {"tiny": 0, "genome": 0, "messy-csv": 0, "ml-10m": 1, "ml-1m": 2, "ml-100k": 3}
out = os.path.join(here, "corpus", "parsers")
os.makedirs(out, exist_ok=True)
for name, layout in seeds.items():
    parts = []
    for f in layouts[layout]:
        path = os.path.join(fixtures, name, f)
        parts.append(open(path, "rb").read() if os.path.exists(path) else b"")
    for strict in (0, 4):
        with open(os.path.join(out, f"{name}-{layout | strict}"), "wb") as w:
            w.write(bytes([layout | strict]) + b"\xfe".join(parts))
print("seeds in", out)
