//! Ingest: change detection, pruning, corpus versions, and every kind of bad file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

mod common;

use std::fs;

use keel::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_detection_prune_and_versions() {
    let Some(embedder) = common::embedder() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let kb = tmp.path().join("kb");
    fs::create_dir_all(kb.join("sub")).unwrap();
    fs::write(kb.join("a.md"), "# Alpha\n\n## Fees\n\nThe alpha fee is $5 per order.\n").unwrap();
    fs::write(kb.join("sub/b.txt"), "Beta hours\n\nWe open at 9 a.m. on weekdays.\n").unwrap();
    fs::write(kb.join("c.html"), "<html><head><title>Gamma</title><script>var x='hidden';</script></head><body><h1>Gamma</h1><p>Gamma ships in 3 days.</p></body></html>").unwrap();
    let cfg = common::config(&tmp.path().join("data"));

    let r1 = common::ingest_paths(&cfg, &embedder, std::slice::from_ref(&kb), false).await;
    assert_eq!(r1.added.len(), 3, "{r1:?}");
    assert!(r1.new_version);
    let v1 = r1.corpus_version.clone().unwrap();

    // Nothing changed: no new version, everything unchanged.
    let r2 = common::ingest_paths(&cfg, &embedder, std::slice::from_ref(&kb), false).await;
    assert_eq!((r2.added.len(), r2.changed.len(), r2.unchanged), (0, 0, 3));
    assert!(!r2.new_version);
    assert_eq!(r2.corpus_version.as_deref(), Some(v1.as_str()));

    // A change replaces that file's chunks and makes a new version.
    fs::write(kb.join("a.md"), "# Alpha\n\n## Fees\n\nThe alpha fee is now $7 per order.\n").unwrap();
    let r3 = common::ingest_paths(&cfg, &embedder, std::slice::from_ref(&kb), false).await;
    assert_eq!(r3.changed.len(), 1);
    assert!(r3.new_version);
    let store = Store::open_embedded(&cfg.data_dir).await.unwrap();
    let chunks = store.docs.all_chunks().await.unwrap();
    let alpha: Vec<_> = chunks.iter().filter(|c| c.doc_id.ends_with("a.md")).collect();
    assert!(alpha.iter().all(|c| !c.text.contains("$5")) && alpha.iter().any(|c| c.text.contains("$7")));
    assert!(chunks.iter().all(|c| !c.text.contains("hidden")), "script content was indexed");

    // A deleted file is reported as missing, and removed only with --prune.
    fs::remove_file(kb.join("sub/b.txt")).unwrap();
    let r4 = common::ingest_paths(&cfg, &embedder, std::slice::from_ref(&kb), false).await;
    assert_eq!(r4.missing.len(), 1);
    assert!(r4.removed.is_empty() && !r4.new_version);
    let r5 = common::ingest_paths(&cfg, &embedder, std::slice::from_ref(&kb), true).await;
    assert_eq!(r5.removed.len(), 1);
    assert!(r5.new_version);
    assert_eq!(store.docs.documents().await.unwrap().len(), 2);
    assert_ne!(r5.corpus_version, r3.corpus_version);

    // Restoring the original content brings back the original version hash (content-addressed).
    fs::write(kb.join("a.md"), "# Alpha\n\n## Fees\n\nThe alpha fee is $5 per order.\n").unwrap();
    fs::write(kb.join("sub/b.txt"), "Beta hours\n\nWe open at 9 a.m. on weekdays.\n").unwrap();
    let r6 = common::ingest_paths(&cfg, &embedder, std::slice::from_ref(&kb), true).await;
    assert_eq!(r6.corpus_version.as_deref(), Some(v1.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_skipped_with_their_reason() {
    let Some(embedder) = common::embedder() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let kb = tmp.path().join("kb");
    fs::create_dir_all(&kb).unwrap();
    fs::write(kb.join("good.md"), "# Good\n\nA fine page about tents.\n").unwrap();
    fs::write(kb.join("binary.md"), b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").unwrap();
    fs::write(kb.join("latin1.txt"), b"caf\xe9 au lait").unwrap();
    fs::write(kb.join("empty.md"), "  \n\n ").unwrap();
    fs::write(kb.join("huge.txt"), "word ".repeat(3_000_000)).unwrap();
    fs::write(kb.join("manual.pdf"), b"%PDF-1.4").unwrap();
    fs::write(
        kb.join("docs.jsonl"),
        "{\"id\":\"d1\",\"title\":\"One\",\"text\":\"First doc.\"}\nnot json\n{\"id\":\"d2\",\"text\":\"\"}\n",
    )
    .unwrap();
    let mut cfg = common::config(&tmp.path().join("data"));
    cfg.ingest.max_file_bytes = 1_000_000;
    let r = common::ingest_paths(&cfg, &embedder, std::slice::from_ref(&kb), false).await;
    let reason = |name: &str| {
        r.skipped
            .iter()
            .find(|s| s.path.ends_with(name))
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| panic!("{name} not skipped: {r:?}"))
    };
    assert!(reason("binary.md").starts_with("binary"));
    assert!(reason("latin1.txt").starts_with("not UTF-8 (invalid byte at offset 3)"));
    assert_eq!(reason("empty.md"), "empty");
    assert!(reason("huge.txt").starts_with("too large"));
    assert!(reason("manual.pdf").contains("unsupported type (.pdf)"));
    assert!(reason("docs.jsonl:2").starts_with("bad JSONL line"));
    assert_eq!(reason("docs.jsonl:3"), "empty");
    let mut added = r.added.clone();
    added.sort();
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(added.contains(&"d1".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_path_is_a_clear_error() {
    let Some(embedder) = common::embedder() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::config(tmp.path());
    let store = Store::open_embedded(&cfg.data_dir).await.unwrap();
    let err = keel::kb::ingest::ingest(
        &[tmp.path().join("nope")],
        &cfg.ingest,
        &store,
        &cfg.data_dir,
        &embedder,
        &keel::kb::ingest::IngestOptions { prune: false, progress: false },
    )
    .await
    .expect_err("fails");
    assert!(err.to_string().contains("nope: no such file or folder"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_help_center_collections_ingest_and_answer() {
    let Some(embedder) = common::embedder() else { return };
    let corpus = common::repo().join("../shared/data/docs/logingov_help/corpus.jsonl");
    if !corpus.is_file() {
        eprintln!("SKIPPED: {} not present", corpus.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::config(tmp.path());
    let r = common::ingest_paths(&cfg, &embedder, &[corpus], false).await;
    assert!(r.added.len() >= 60, "{}", r.added.len());
    let server = common::Server::start(cfg, embedder).await;
    let answer =
        server.app.pipeline.run(keel::pipeline::Question::new("How do I change my password?", "test")).await.unwrap();
    assert!(!answer.escalate, "{answer:?}");
    assert!(answer.answer.to_lowercase().contains("password"), "{}", answer.answer);
    server.stop().await;
}
