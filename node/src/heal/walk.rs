//! Paging through every object record of some buckets, as the healer and the orphan sweep do.

use coffer_metadata::{MetaError, MetaStore, ObjectRecord};

/// Object records read per metadata call.
pub const PAGE: usize = 256;

/// The object records of `buckets`, a page at a time, in bucket then key order; a bucket
/// deleted meanwhile (so it was empty) is skipped.
pub struct ObjectPages<'a> {
    meta: &'a MetaStore,
    buckets: Vec<String>,
    bucket: usize,
    after: Option<String>,
}

impl<'a> ObjectPages<'a> {
    /// Pages of the objects of `buckets`.
    pub fn new(meta: &'a MetaStore, buckets: Vec<String>) -> Self {
        Self {
            meta,
            buckets,
            bucket: 0,
            after: None,
        }
    }

    /// The next non-empty page and its bucket, or None after the last.
    pub async fn next(&mut self) -> Result<Option<(&str, Vec<(String, ObjectRecord)>)>, MetaError> {
        while self.bucket < self.buckets.len() {
            let name = &self.buckets[self.bucket];
            let page = match self
                .meta
                .list_objects(name, "", self.after.as_deref(), PAGE)
                .await
            {
                Ok(p) => p,
                Err(MetaError::NoSuchBucket) => Vec::new(),
                Err(e) => return Err(e),
            };
            match page.last() {
                Some((last, _)) => {
                    self.after = Some(last.clone());
                    return Ok(Some((&self.buckets[self.bucket], page)));
                }
                None => {
                    self.bucket += 1;
                    self.after = None;
                }
            }
        }
        Ok(None)
    }
}
