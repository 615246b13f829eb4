//! What a version-2 stream is bound to: the bucket, object key, version id and part number.

/// The identity of one stream, bound into the AAD of each of its packages (version 2).
///
/// `part` is 0 for a single-part object and 1..=10000 for a multipart part. A package moved to
/// a stream with any other field different fails to authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamBinding {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub object: String,
    /// Version id of the object ("" or "null" when versioning is off: the node decides).
    pub version_id: String,
    /// Part number: 0 for a single-part object, 1..=10000 for a multipart part.
    pub part: u32,
}

impl StreamBinding {
    /// A binding from borrowed fields.
    pub fn new(bucket: &str, object: &str, version_id: &str, part: u32) -> Self {
        Self {
            bucket: bucket.to_owned(),
            object: object.to_owned(),
            version_id: version_id.to_owned(),
            part,
        }
    }

    /// The canonical bytes: for bucket, object and version id in that order, its length
    /// (u32 BE) then its UTF-8 bytes; then the part number (u32 BE).
    ///
    /// Length prefixes make the encoding injective: two different bindings never share bytes.
    ///
    /// # Panics
    ///
    /// If a field is 4 GiB or longer (S3 limits keys to 1 KiB and buckets to 63 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let fields = [&self.bucket, &self.object, &self.version_id];
        let mut out = Vec::with_capacity(16 + fields.iter().map(|f| f.len()).sum::<usize>());
        for field in fields {
            let len = u32::try_from(field.len()).expect("binding field shorter than 4 GiB");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(&self.part.to_be_bytes());
        out
    }
}
