//! Paging through every object record and every part of an upload in progress, as the healer
//! and the orphan sweep do.

use coffer_metadata::{MetaError, MetaStore, ObjectRecord, PartRecord};

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

/// The part records of every upload in progress in `buckets`, a page at a time, in bucket,
/// key, upload id and part number order; uploads completed or aborted meanwhile and buckets
/// deleted meanwhile are skipped (their parts are in an object by then, or gone).
pub struct UploadParts<'a> {
    meta: &'a MetaStore,
    buckets: Vec<String>,
    bucket: usize,
    /// The last upload of the current page of uploads: (key, upload id).
    after_upload: Option<(String, String)>,
    /// Uploads of the current page not yet walked.
    uploads: std::collections::VecDeque<String>,
    /// The last part number read of the front upload.
    after_part: u32,
}

impl<'a> UploadParts<'a> {
    /// Pages of the parts of the uploads of `buckets`.
    pub fn new(meta: &'a MetaStore, buckets: Vec<String>) -> Self {
        Self {
            meta,
            buckets,
            bucket: 0,
            after_upload: None,
            uploads: Default::default(),
            after_part: 0,
        }
    }

    /// The next non-empty page of one upload's parts and that upload's id, or None after the
    /// last.
    pub async fn next(&mut self) -> Result<Option<(String, Vec<PartRecord>)>, MetaError> {
        loop {
            if let Some(upload_id) = self.uploads.front().cloned() {
                match self
                    .meta
                    .list_parts(&upload_id, self.after_part, PAGE)
                    .await
                {
                    Ok(parts) if !parts.is_empty() => {
                        self.after_part = parts.last().map_or(0, |p| p.part_number);
                        return Ok(Some((upload_id, parts)));
                    }
                    Ok(_) | Err(MetaError::NoSuchUpload) => {
                        self.uploads.pop_front();
                        self.after_part = 0;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(name) = self.buckets.get(self.bucket) else {
                return Ok(None);
            };
            let marker = self
                .after_upload
                .as_ref()
                .map(|(k, id)| (k.as_str(), Some(id.as_str())));
            let page = match self.meta.list_uploads_after(name, "", marker, PAGE).await {
                Ok(p) => p,
                Err(MetaError::NoSuchBucket) => Vec::new(),
                Err(e) => return Err(e),
            };
            match page.last() {
                Some(last) => {
                    self.after_upload = Some((last.key.clone(), last.upload_id.clone()));
                    self.uploads = page.into_iter().map(|u| u.upload_id).collect();
                }
                None => {
                    self.bucket += 1;
                    self.after_upload = None;
                }
            }
        }
    }
}
