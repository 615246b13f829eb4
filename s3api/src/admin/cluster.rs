//! `/api/v1/cluster`: the cluster's status and its membership.
//!
//! - `GET /api/v1/cluster` → 200 and the status (nodes, roles, leader, term, commit index,
//!   replication lag, drives and their health).
//! - `POST /api/v1/cluster/nodes` with `{"id": N, "addr": "host:port"}` → 200 once node N is a
//!   voter (it joins as a learner, catches up, then is promoted).
//! - `DELETE /api/v1/cluster/nodes/{id}` → 200 once node `id` is out of the group and layout.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{authorize, error_response, store_error, AdminState};
use crate::backend::{Backend, ClusterAdminRequest};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    id: u64,
    addr: String,
}

async fn run<B: Backend>(
    st: &AdminState<B>,
    headers: &HeaderMap,
    req: ClusterAdminRequest,
) -> Response {
    if let Err(resp) = authorize(&st.token, headers) {
        return *resp;
    }
    match st.backend.admin_cluster(req).await {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => store_error(e),
    }
}

pub(super) async fn status<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    headers: HeaderMap,
) -> Response {
    run(&st, &headers, ClusterAdminRequest::Status).await
}

pub(super) async fn add_node<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = authorize(&st.token, &headers) {
        return *resp;
    }
    let valid = serde_json::from_slice::<AddBody>(&body)
        .ok()
        .filter(|b| b.id > 0 && valid_addr(&b.addr));
    let Some(AddBody { id, addr }) = valid else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            r#"the body must be {"id": <node id>, "addr": "<host>:<port>"}"#,
        );
    };
    run(&st, &headers, ClusterAdminRequest::AddNode { id, addr }).await
}

pub(super) async fn remove_node<B: Backend>(
    State(st): State<Arc<AdminState<B>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = authorize(&st.token, &headers) {
        return *resp;
    }
    let Some(id) = id.parse::<u64>().ok().filter(|i| *i > 0) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "the node id must be a positive integer",
        );
    };
    run(&st, &headers, ClusterAdminRequest::RemoveNode(id)).await
}

fn valid_addr(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}
