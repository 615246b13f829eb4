//! One place for the on-disk and on-wire encoding: JSON via serde_json.
//!
//! JSON rather than bincode because it is self-describing: records keep `deny_unknown_fields`
//! meaningful, a dump is readable when debugging a cluster, and adding an optional field later
//! does not make old bytes unreadable. Opaque byte fields are base64 strings (see `types.rs`).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;

/// Encodes a value for sled or the wire.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value)?)
}

/// Decodes a value written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}
