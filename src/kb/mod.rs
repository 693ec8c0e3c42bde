//! The knowledge base: turning files into documents, documents into chunks, and keeping the
//! store in step with a folder (change detection, pruning, corpus versions).

pub mod chunk;
pub mod ingest;
pub mod parse;

pub use chunk::{chunk_document, Chunk};
pub use parse::{parse_file, DocFormat, ParsedDoc, Section};
