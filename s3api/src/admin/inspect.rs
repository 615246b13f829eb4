//! `GET /api/v1/buckets/{bucket}/objects/{key}` and `.../uploads/{upload_id}`: how an object or
//! an upload in progress is stored, for operators and tests. The backend decides the JSON; it
//! holds encryption facts and segment layout, never key material.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{authorize, store_error, AdminState};
use crate::backend::Backend;

pub(super) async fn object<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path((bucket, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = authorize(&st.token, &headers) {
        return *resp;
    }
    match st.backend.admin_object(&bucket, &key).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => store_error(e),
    }
}

pub(super) async fn upload<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path((bucket, upload_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = authorize(&st.token, &headers) {
        return *resp;
    }
    match st.backend.admin_upload(&bucket, &upload_id).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => store_error(e),
    }
}
