//! `/api/v1/buckets/{bucket}/rewrap`: the job that re-wraps every object's data key under a
//! key's newest version (after a rotation) or under another key, without touching object bytes.
//!
//! - `POST` with an optional JSON body `{"to_key": "...", "max_per_second": N}` → 202 and the
//!   job; an interrupted or failed job with the same target resumes from its checkpoint, a
//!   running one is returned as it is, a running one with another target is 409.
//! - `GET` → 200 and the bucket's current or last job; 404 `NoSuchJob` when none ran.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{authorize, error_response, store_error, AdminState};
use crate::backend::{Backend, RewrapAdminRequest};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StartBody {
    to_key: Option<String>,
    max_per_second: Option<u32>,
}

async fn run<B: Backend>(
    st: &AdminState<B>,
    headers: &HeaderMap,
    req: RewrapAdminRequest,
    ok: StatusCode,
) -> Response {
    if let Err(resp) = authorize(&st.token, headers) {
        return *resp;
    }
    match st.backend.admin_rewrap(req).await {
        Ok(v) => (ok, Json(v)).into_response(),
        Err(e) => store_error(e),
    }
}

pub(super) async fn start<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = authorize(&st.token, &headers) {
        return *resp;
    }
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(StartBody::default())
    } else {
        serde_json::from_slice::<StartBody>(&body)
    };
    let Ok(StartBody {
        to_key,
        max_per_second,
    }) = parsed
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            r#"the body must be empty or {"to_key": "<id>", "max_per_second": <n>}"#,
        );
    };
    if max_per_second == Some(0) || to_key.as_deref() == Some("") {
        return error_response(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "max_per_second must be at least 1 and to_key must not be empty",
        );
    }
    let req = RewrapAdminRequest::Start {
        bucket,
        to_key,
        max_per_second,
    };
    run(&st, &headers, req, StatusCode::ACCEPTED).await
}

pub(super) async fn status<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
) -> Response {
    run(
        &st,
        &headers,
        RewrapAdminRequest::Status { bucket },
        StatusCode::OK,
    )
    .await
}
