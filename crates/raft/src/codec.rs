//! The one binary encoding used for openraft's messages on the wire and its log entries on disk.
//! Owns the bincode options so every reader and writer agrees; knows nothing of their meaning.

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

/// Refuse to decode anything larger: a corrupt length prefix must not make us allocate without
/// bound. Far above any message we send (those stay near 4 MiB).
const MAX_DECODE: u64 = 512 * 1024 * 1024;

/// An encoding or decoding failure, bincode's error kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("codec: {0}")]
pub struct CodecError(#[source] bincode::Error);

fn options() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_DECODE)
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    options().serialize(value).map_err(CodecError)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    options().deserialize(bytes).map_err(CodecError)
}
