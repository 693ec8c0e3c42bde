"""Embedding throughput of sentence-transformers (PyTorch, CPU) on the same texts as
`keel bench embed`, for the ratio in bench/README.md.

Usage: python bench/embed_st.py MODEL_DIR DATA.jsonl LIMIT
"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

model_dir, data, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(2)
texts = []
with open(data) as f:
    for line in f:
        if not line.strip():
            continue
        v = json.loads(line)
        title, body = v.get("title", ""), v.get("text", "")
        texts.append(f"{title}\n{body}" if title else body)
        if len(texts) >= limit:
            break
model = SentenceTransformer(model_dir, device="cpu")
model.encode(texts[:8])  # warm-up
start = time.perf_counter()
model.encode(texts, batch_size=32)
secs = time.perf_counter() - start
print(json.dumps({"engine": f"sentence-transformers {__import__('sentence_transformers').__version__} / torch {torch.__version__}",
                  "texts": len(texts), "seconds": secs, "passages_per_s": len(texts) / secs}))
