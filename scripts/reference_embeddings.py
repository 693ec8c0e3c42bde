"""Writes reference embeddings from sentence-transformers (PyTorch) for keel-embed's tests.

Usage: python scripts/reference_embeddings.py MODEL_DIR OUT.json
MODEL_DIR is the folder `keel models fetch` fills (`keel models path`).
"""
import json
import sys

from sentence_transformers import SentenceTransformer

TEXTS = [
    "How long do I have to return an item?",
    "Returns are accepted within 30 days of delivery; Trailhead Club members get 60 days.",
    "Résumé of the naïve café owner's façade — with ünïcödé, emoji 🚀 and CJK 日本語 text.",
    " ".join(["a long passage that exceeds the two hundred and fifty six token cap"] * 40),
]

model = SentenceTransformer(sys.argv[1], device="cpu")
vecs = model.encode(TEXTS, normalize_embeddings=False)
json.dump({"texts": TEXTS, "vectors": [[round(float(x), 6) for x in v] for v in vecs]}, open(sys.argv[2], "w"))
print(f"wrote {len(TEXTS)} vectors of {len(vecs[0])} dims")
