//! Evaluation on labelled records, for `keel redteam`: detection rates and latency.

mod report;

pub use report::{
    evaluate, evaluate_with, percentile, read_records, CategoryRate, EvalMode, EvalReport, Label, Record,
};
