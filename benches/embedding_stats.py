#!/usr/bin/env python3
"""How crowded a model's embedding rows are: the statistics docs/BENCHMARKS.md quotes for them.

    python3 benches/embedding_stats.py MODEL_DIR [MODEL]     (MODEL: svd, als, hybrid, content)

Reads MODEL.embeddings from a model directory written by `movierec train` (its rows are the
file's last movies x dim float32 values; dim from manifest.json), normalises the rows to unit
length and prints: the share of the rows' energy in the leading directions, the mean cosine of
20,000 random pairs, and medians over 500 random movies of the 1st and 10th nearest cosines and
of the gap between the 10th and the 100th. Needs numpy (`pip install numpy`, or the venv of
benches/python_stack.py).
Fixed seed: the same model gives the same figures.
"""
import json
import sys

import numpy as np


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    model_dir = sys.argv[1]
    model = sys.argv[2] if len(sys.argv) == 3 else "svd"
    manifest = json.load(open(f"{model_dir}/manifest.json"))
    try:
        dim = int(manifest["models"][model]["dim"])
    except KeyError:
        sys.exit(f"{model_dir}/manifest.json has no model {model!r} with a dim")
    raw = open(f"{model_dir}/{model}.embeddings", "rb").read()
    n = (len(raw) - 192) // (4 * dim)
    rows = np.frombuffer(raw[len(raw) - n * dim * 4:], dtype=np.float32).reshape(n, dim)
    rows = rows.astype(np.float64)
    norms = np.linalg.norm(rows, axis=1)
    unit = rows[norms > 0] / norms[norms > 0, None]
    singular = np.linalg.svd(unit, compute_uv=False)
    energy = singular**2 / (singular**2).sum()
    rng = np.random.default_rng(0)
    i = rng.integers(0, len(unit), 20000)
    j = rng.integers(0, len(unit), 20000)
    mean_cos = (unit[i] * unit[j]).sum(axis=1).mean()
    queries = unit[rng.choice(len(unit), min(500, len(unit)), replace=False)]
    sims = -np.sort(-(queries @ unit.T), axis=1)  # column 0 is the movie itself
    first, tenth = np.median(sims[:, 1]), np.median(sims[:, 10])
    gap = np.median(sims[:, 10] - sims[:, min(100, sims.shape[1] - 1)])
    top = " / ".join(f"{100 * e:.1f}" for e in energy[:4])
    print(
        f"{model_dir} {model}: {len(unit)} rows x {dim}; energy of the first 4 directions {top}%; "
        f"mean cosine {mean_cos:.3f}; 1st / 10th nearest {first:.3f} / {tenth:.3f}; "
        f"10th - 100th {gap:.3f}"
    )


if __name__ == "__main__":
    main()
