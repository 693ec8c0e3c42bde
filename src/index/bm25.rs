//! BM25 over chunks with tantivy: English stemming and stop words, one document per chunk,
//! keyed by a 64-bit fast field so hits map back to in-memory chunks without a stored-doc read.

use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STRING};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{doc, Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use super::{chunk_key, index_text, IndexError};
use crate::store::ChunkRecord;

const ANALYZER: &str = "keel_en";
const WRITER_HEAP: usize = 64 << 20;

fn err(e: impl std::fmt::Display) -> IndexError {
    IndexError::Bm25(e.to_string())
}

struct Fields {
    key: Field,
    doc: Field,
    body: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let key = b.add_u64_field("key", FAST | INDEXED);
    let doc = b.add_text_field("doc", STRING);
    let indexing =
        TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let body = b.add_text_field("body", TextOptions::default().set_indexing_options(indexing));
    (b.build(), Fields { key, doc, body })
}

fn analyzer() -> Result<TextAnalyzer, IndexError> {
    let stop = StopWordFilter::new(Language::English).ok_or_else(|| err("no English stop words"))?;
    Ok(TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop)
        .filter(Stemmer::new(Language::English))
        .build())
}

pub struct Bm25 {
    index: Index,
    reader: IndexReader,
    parser: QueryParser,
    fields: Fields,
}

impl Bm25 {
    /// Opens the index in `dir`; rebuilds it from `chunks` unless it was committed for `version`.
    pub fn open_or_rebuild(dir: &Path, version: &str, chunks: &[ChunkRecord]) -> Result<Self, IndexError> {
        let mut bm25 = Self::open(dir)?;
        if bm25.version()? != version {
            bm25.rebuild(version, chunks)?;
        }
        Ok(bm25)
    }

    /// Opens (or creates) the index in `dir`. An unreadable index is derived data: it is
    /// replaced by an empty one, which the caller then rebuilds.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let (schema, fields) = schema();
        let open = || -> Result<Index, IndexError> {
            let index = Index::open_or_create(MmapDirectory::open(dir).map_err(err)?, schema.clone()).map_err(err)?;
            index.tokenizers().register(ANALYZER, analyzer()?);
            Ok(index)
        };
        let index = match open() {
            Ok(i) => i,
            Err(_) => {
                std::fs::remove_dir_all(dir).map_err(err)?;
                std::fs::create_dir_all(dir).map_err(err)?;
                open()?
            }
        };
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(err)?;
        // OR semantics by default: BM25 ranks partial matches.
        let parser = QueryParser::for_index(&index, vec![fields.body]);
        Ok(Self { index, reader, parser, fields })
    }

    /// The corpus version this index was last committed for ("" if never).
    pub fn version(&self) -> Result<String, IndexError> {
        Ok(self.index.load_metas().map_err(err)?.payload.unwrap_or_default())
    }

    /// Replaces the whole index with `chunks`, committed under `version`.
    pub fn rebuild(&mut self, version: &str, chunks: &[ChunkRecord]) -> Result<(), IndexError> {
        let writer = self.index.writer::<TantivyDocument>(WRITER_HEAP).map_err(err)?;
        writer.delete_all_documents().map_err(err)?;
        self.commit(writer, chunks.iter(), version)
    }

    fn commit<'a>(
        &self,
        mut writer: tantivy::IndexWriter<TantivyDocument>,
        chunks: impl Iterator<Item = &'a ChunkRecord>,
        version: &str,
    ) -> Result<(), IndexError> {
        for c in chunks {
            writer
                .add_document(doc!(
                    self.fields.key => chunk_key(&c.id),
                    self.fields.doc => c.doc_id.as_str(),
                    self.fields.body => index_text(&c.title, &c.heading, &c.text),
                ))
                .map_err(err)?;
        }
        let mut prepared = writer.prepare_commit().map_err(err)?;
        prepared.set_payload(version);
        prepared.commit().map_err(err)?;
        writer.wait_merging_threads().map_err(err)?;
        self.reader.reload().map_err(err)?;
        Ok(())
    }

    /// The best `n` chunks as `(chunk key, score)`.
    pub fn search(&self, query: &str, n: usize) -> Result<Vec<(u64, f32)>, IndexError> {
        // Query syntax characters in user text must not change meaning or fail.
        let cleaned: String = query.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
        let (q, _ignored) = self.parser.parse_query_lenient(&cleaned);
        let searcher = self.reader.searcher();
        let top = searcher.search(&q, &TopDocs::with_limit(n.max(1))).map_err(err)?;
        let mut out = Vec::with_capacity(top.len());
        let mut columns: Vec<Option<tantivy::columnar::Column<u64>>> = vec![None; searcher.segment_readers().len()];
        for (score, addr) in top {
            let seg = addr.segment_ord as usize;
            if columns[seg].is_none() {
                columns[seg] = Some(searcher.segment_reader(addr.segment_ord).fast_fields().u64("key").map_err(err)?);
            }
            if let Some(key) = columns[seg].as_ref().and_then(|c| c.first(addr.doc_id)) {
                out.push((key, score));
            }
        }
        Ok(out)
    }

    /// Deletes every chunk of `docs` (removed or changed documents), adds `upserts`, and
    /// commits under `version`.
    pub fn apply<'a>(
        &mut self,
        docs: &[String],
        upserts: impl Iterator<Item = &'a ChunkRecord>,
        version: &str,
    ) -> Result<(), IndexError> {
        let writer = self.index.writer::<TantivyDocument>(WRITER_HEAP).map_err(err)?;
        for d in docs {
            writer.delete_term(Term::from_field_text(self.fields.doc, d));
        }
        self.commit(writer, upserts, version)
    }
}
