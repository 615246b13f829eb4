//! `/api/v1/kms/...`: the KMS as operators see it. The backend decides the JSON (provider,
//! health, key ids, states and versions); no route ever returns key material.
//!
//! - `GET /api/v1/kms/status`
//! - `GET /api/v1/kms/keys`, `POST /api/v1/kms/keys` with `{"key_id": "..."}` (201)
//! - `GET /api/v1/kms/keys/{id}`, `POST /api/v1/kms/keys/{id}/rotate`
//!
//! Key ids may contain `/` (Vault and AWS aliases do), so `{id}` is the rest of the path and
//! `/rotate` is recognised at its end.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{authorize, error_response, AdminState};
use crate::backend::{Backend, KmsAdminRequest, StoreError};

async fn run<B: Backend>(
    st: &AdminState<B>,
    headers: &HeaderMap,
    req: KmsAdminRequest,
    ok: StatusCode,
) -> Response {
    if let Err(resp) = authorize(&st.token, headers) {
        return *resp;
    }
    match st.backend.admin_kms(req).await {
        Ok(v) => (ok, Json(v)).into_response(),
        Err(e) => kms_error(e),
    }
}

/// Admin statuses for KMS failures: an unknown key is a 404 here (S3 calls it a 400).
fn kms_error(e: StoreError) -> Response {
    match e {
        StoreError::KmsKeyNotFound(id) => error_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the KMS key {id} was not found"),
        ),
        other => super::store_error(other),
    }
}

pub(super) async fn status<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    headers: HeaderMap,
) -> Response {
    run(&st, &headers, KmsAdminRequest::Status, StatusCode::OK).await
}

pub(super) async fn list_keys<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    headers: HeaderMap,
) -> Response {
    run(&st, &headers, KmsAdminRequest::ListKeys, StatusCode::OK).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    key_id: String,
}

pub(super) async fn create_key<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = authorize(&st.token, &headers) {
        return *resp;
    }
    let Ok(CreateKey { key_id }) = serde_json::from_slice::<CreateKey>(&body) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            r#"the body must be {"key_id": "<id>"}"#,
        );
    };
    run(
        &st,
        &headers,
        KmsAdminRequest::CreateKey(key_id),
        StatusCode::CREATED,
    )
    .await
}

pub(super) async fn get_key<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    run(
        &st,
        &headers,
        KmsAdminRequest::DescribeKey(id),
        StatusCode::OK,
    )
    .await
}

/// `POST /api/v1/kms/keys/{id}/rotate` (the only POST under a key).
pub(super) async fn post_key<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    match rest.strip_suffix("/rotate").filter(|id| !id.is_empty()) {
        Some(id) => {
            run(
                &st,
                &headers,
                KmsAdminRequest::RotateKey(id.to_owned()),
                StatusCode::OK,
            )
            .await
        }
        None => error_response(StatusCode::NOT_FOUND, "NotFound", "no such route"),
    }
}
