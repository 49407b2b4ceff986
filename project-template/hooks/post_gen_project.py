"""Make the project's small demo manifest, so `serotiny train` works right away.

Pure standard library on purpose: cookiecutter may run this with any Python, and nothing
is downloaded. Three classes of points around different centres in eight features,
with an id column and a train/valid/test split column.

It also removes any `__pycache__` folder copied from the template: pip byte-compiles the
template's Python files where serotiny is installed, and those caches are not the project's.
"""

import csv
import random
import shutil
from pathlib import Path

for cache in sorted(Path(".").rglob("__pycache__"), reverse=True):
    shutil.rmtree(cache)

NUM_FEATURES = 8
NUM_CLASSES = 3
ROWS_PER_CLASS = 100
SPLITS = (("train", 0.7), ("valid", 0.15), ("test", 0.15))

generator = random.Random(1234)
centres = [[generator.gauss(0.0, 2.0) for _ in range(NUM_FEATURES)] for _ in range(NUM_CLASSES)]
rows = []
for label, centre in enumerate(centres):
    for _ in range(ROWS_PER_CLASS):
        rows.append([generator.gauss(mean, 1.0) for mean in centre] + [label])
generator.shuffle(rows)

path = Path("data") / "manifest.csv"
path.parent.mkdir(exist_ok=True)
with path.open("w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(
        ["id", "split", *(f"feature_{index}" for index in range(NUM_FEATURES)), "label"]
    )
    boundary, start = [], 0.0
    for name, fraction in SPLITS:
        start += fraction
        boundary.append((start * len(rows), name))
    for index, row in enumerate(rows):
        split = next(name for limit, name in boundary if index < limit)
        writer.writerow([f"sample_{index:04d}", split, *(f"{x:.5f}" for x in row[:-1]), row[-1]])
