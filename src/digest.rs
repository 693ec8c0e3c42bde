//! Content hashes, spelled one way everywhere: lower-case hex SHA-256.

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
