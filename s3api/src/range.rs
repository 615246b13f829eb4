//! Range requests and conditional (If-*) headers of GetObject and HeadObject.

use s3s::dto::{ETagCondition, Range, Timestamp};

use crate::backend::RangeSpec;

/// Converts the Range header s3s parsed into the backend's [`RangeSpec`].
///
/// s3s already rejects syntactically invalid ranges (and `first > last`) with 400
/// InvalidArgument before we see the request; `bytes=-0` arrives as `Suffix(0)`, which no
/// object can satisfy, so the caller answers 416.
#[must_use]
pub fn to_range_spec(range: &Range) -> RangeSpec {
    match *range {
        Range::Int {
            first,
            last: Some(last),
        } => RangeSpec::FromTo(first, last),
        Range::Int { first, last: None } => RangeSpec::From(first),
        Range::Suffix { length } => RangeSpec::Suffix(length),
    }
}

/// True when the range can never be satisfied whatever the object size.
#[must_use]
pub fn is_never_satisfiable(spec: RangeSpec) -> bool {
    matches!(spec, RangeSpec::Suffix(0))
}

/// The `Content-Range` value for the inclusive byte range `start..=end` of `size` bytes.
#[must_use]
pub fn content_range(start: u64, end: u64, size: u64) -> String {
    format!("bytes {start}-{end}/{size}")
}

/// The If-* headers of a read.
#[derive(Default)]
pub struct Conditions<'a> {
    /// If-Match.
    pub if_match: Option<&'a ETagCondition>,
    /// If-None-Match.
    pub if_none_match: Option<&'a ETagCondition>,
    /// If-Modified-Since.
    pub if_modified_since: Option<&'a Timestamp>,
    /// If-Unmodified-Since.
    pub if_unmodified_since: Option<&'a Timestamp>,
}

/// What the conditional headers decide for a GET or HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the object.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        // S3 compares the opaque value; W/ prefixes are ignored as S3 ETags are always strong.
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

fn secs(ts: &Timestamp) -> i64 {
    time::OffsetDateTime::from(ts.clone()).unix_timestamp()
}

/// Evaluates the conditions in RFC 7232 §6 order (which is also what S3 documents, including
/// "If-Match true + If-Unmodified-Since false → 200" and "If-None-Match false +
/// If-Modified-Since true → 304"). HTTP dates have whole seconds, so compare at that precision.
#[must_use]
pub fn evaluate(c: &Conditions<'_>, etag: &str, last_modified_ms: i64) -> Outcome {
    let modified_secs = last_modified_ms.div_euclid(1000);
    if let Some(m) = c.if_match {
        if !etag_matches(m, etag) {
            return Outcome::PreconditionFailed;
        }
    } else if let Some(t) = c.if_unmodified_since {
        if modified_secs > secs(t) {
            return Outcome::PreconditionFailed;
        }
    }
    if let Some(m) = c.if_none_match {
        if etag_matches(m, etag) {
            return Outcome::NotModified;
        }
    } else if let Some(t) = c.if_modified_since {
        if modified_secs <= secs(t) {
            return Outcome::NotModified;
        }
    }
    Outcome::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::{ETag, TimestampFormat};

    fn parse(s: &str) -> Option<RangeSpec> {
        Range::parse(s).ok().map(|r| to_range_spec(&r))
    }

    #[test]
    fn range_forms() {
        assert_eq!(parse("bytes=0-0"), Some(RangeSpec::FromTo(0, 0)));
        assert_eq!(parse("bytes=-1"), Some(RangeSpec::Suffix(1)));
        assert_eq!(parse("bytes=5-"), Some(RangeSpec::From(5)));
        assert_eq!(parse("bytes=10-20"), Some(RangeSpec::FromTo(10, 20)));
        // Invalid syntax never reaches us as a range (s3s answers 400 first).
        assert_eq!(parse("bytes=5-3"), None);
        assert_eq!(parse("bytes=abc"), None);
        assert_eq!(parse("items=0-1"), None);
        assert_eq!(parse("bytes=0-1,3-4"), None);
        assert!(is_never_satisfiable(parse("bytes=-0").unwrap()));
        assert!(!is_never_satisfiable(parse("bytes=0-").unwrap()));
        assert_eq!(content_range(0, 9, 100), "bytes 0-9/100");
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(TimestampFormat::HttpDate, s).unwrap()
    }

    #[test]
    fn conditionals() {
        // Object modified at 2024-01-01T00:00:00.500Z.
        let lm = 1_704_067_200_500;
        let same = ts("Mon, 01 Jan 2024 00:00:00 GMT");
        let before = ts("Sun, 31 Dec 2023 00:00:00 GMT");
        let good = ETagCondition::ETag(ETag::Strong("abc".into()));
        let bad = ETagCondition::ETag(ETag::Strong("zzz".into()));
        let any = ETagCondition::Any;
        let eval = |c: Conditions<'_>| evaluate(&c, "abc", lm);

        assert_eq!(eval(Conditions::default()), Outcome::Proceed);
        assert_eq!(
            eval(Conditions {
                if_match: Some(&good),
                ..Default::default()
            }),
            Outcome::Proceed
        );
        assert_eq!(
            eval(Conditions {
                if_match: Some(&bad),
                ..Default::default()
            }),
            Outcome::PreconditionFailed
        );
        assert_eq!(
            eval(Conditions {
                if_match: Some(&any),
                ..Default::default()
            }),
            Outcome::Proceed
        );
        assert_eq!(
            eval(Conditions {
                if_none_match: Some(&good),
                ..Default::default()
            }),
            Outcome::NotModified
        );
        assert_eq!(
            eval(Conditions {
                if_none_match: Some(&any),
                ..Default::default()
            }),
            Outcome::NotModified
        );
        assert_eq!(
            eval(Conditions {
                if_none_match: Some(&bad),
                ..Default::default()
            }),
            Outcome::Proceed
        );
        assert_eq!(
            eval(Conditions {
                if_modified_since: Some(&same),
                ..Default::default()
            }),
            Outcome::NotModified
        );
        assert_eq!(
            eval(Conditions {
                if_modified_since: Some(&before),
                ..Default::default()
            }),
            Outcome::Proceed
        );
        assert_eq!(
            eval(Conditions {
                if_unmodified_since: Some(&same),
                ..Default::default()
            }),
            Outcome::Proceed
        );
        assert_eq!(
            eval(Conditions {
                if_unmodified_since: Some(&before),
                ..Default::default()
            }),
            Outcome::PreconditionFailed
        );
        // S3: If-Match true and If-Unmodified-Since false → 200.
        assert_eq!(
            eval(Conditions {
                if_match: Some(&good),
                if_unmodified_since: Some(&before),
                ..Default::default()
            }),
            Outcome::Proceed
        );
        // S3: If-None-Match false (etag differs) and If-Modified-Since true → 200; etag wins.
        assert_eq!(
            eval(Conditions {
                if_none_match: Some(&bad),
                if_modified_since: Some(&same),
                ..Default::default()
            }),
            Outcome::Proceed
        );
    }
}
