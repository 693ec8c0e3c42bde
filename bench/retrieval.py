"""Retrieval quality of `keel search` on a BEIR-style dataset (nDCG@10, Recall@100), with
document score = best chunk score. Fusion settings are chosen on the train split and the
chosen one is reported on test.

Usage:
  python bench/retrieval.py --keel target/release/keel --data-dir DIR \
      --dataset ../shared/data/retrieval/scifact [--tune-split train] [--report-split test]
The corpus must already be ingested into DIR (`keel --data-dir DIR ingest corpus.jsonl`).
"""
import argparse
import json
import math
import os
import subprocess
import tempfile
import time

DEPTH = 300  # chunks requested per query; enough for 100 distinct documents


def load_qrels(path):
    qrels = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split("\t")
            if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
                continue
            q, d, g = parts
            if int(g) > 0:
                qrels.setdefault(q, {})[d] = int(g)
    return qrels


def run(keel, data_dir, queries, config_toml):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as cfg:
        cfg.write(config_toml)
    try:
        t = time.perf_counter()
        out = subprocess.run(
            [keel, "--config", cfg.name, "--data-dir", data_dir, "search", "--queries", queries, "--json", "--top", str(DEPTH)],
            check=True, capture_output=True, text=True,
        ).stdout
        secs = time.perf_counter() - t
    finally:
        os.unlink(cfg.name)
    runs = {}
    for line in out.splitlines():
        r = json.loads(line)
        docs = {}
        for hit in r["results"]:
            docs.setdefault(hit["doc"], hit["score"])  # results are best-first: first = best chunk
        runs[str(r["id"])] = sorted(docs.items(), key=lambda kv: -kv[1])
    return runs, secs


def ndcg_at(ranked, rel, k=10):
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, (d, _) in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def evaluate(runs, qrels):
    qs = [q for q in qrels if q in runs]
    ndcg = sum(ndcg_at(runs[q], qrels[q]) for q in qs) / len(qs)
    recall = sum(len({d for d, _ in runs[q][:100]} & set(qrels[q])) / len(qrels[q]) for q in qs) / len(qs)
    return {"ndcg@10": round(ndcg, 4), "recall@100": round(recall, 4), "queries": len(qs)}


def filtered_queries(dataset, split, qrels):
    path = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
    with open(os.path.join(dataset, f"queries_{split}.jsonl")) as f:
        for line in f:
            if json.loads(line)["id"] in qrels:
                path.write(line)
    path.close()
    return path.name


METHODS = {
    "bm25": '[retrieval]\nfusion = "weighted"\ndense_weight = 0.0\ncandidates = 300\n',
    "dense": '[retrieval]\nfusion = "weighted"\ndense_weight = 1.0\ncandidates = 300\n',
    "rrf": '[retrieval]\nfusion = "rrf"\nrrf_k = 60.0\ncandidates = 300\n',
}
for w in (0.3, 0.4, 0.5, 0.6, 0.7):
    METHODS[f"weighted_{w}"] = f'[retrieval]\nfusion = "weighted"\ndense_weight = {w}\ncandidates = 300\n'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keel", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--tune-split", default="train")
    ap.add_argument("--report-split", default="test")
    args = ap.parse_args()
    report = {"dataset": os.path.basename(args.dataset.rstrip("/"))}
    results = {}
    for split in (args.tune_split, args.report_split):
        qrels = load_qrels(os.path.join(args.dataset, f"qrels_{split}.tsv"))
        queries = filtered_queries(args.dataset, split, qrels)
        for name, toml in METHODS.items():
            runs, secs = run(args.keel, args.data_dir, queries, toml)
            m = evaluate(runs, qrels)
            m["seconds"] = round(secs, 1)
            results.setdefault(split, {})[name] = m
            print(split, name, m, flush=True)
        os.unlink(queries)
    fused = {k: v for k, v in results[args.tune_split].items() if k.startswith("weighted") or k == "rrf"}
    best = max(fused, key=lambda k: fused[k]["ndcg@10"])
    report["chosen_on_" + args.tune_split] = best
    report["results"] = results
    report["hybrid_" + args.report_split] = results[args.report_split][best]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
