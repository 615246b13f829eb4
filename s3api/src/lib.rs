//! The S3 HTTP surface and the admin HTTP API of Coffer.
//!
//! The node implements [`Backend`]; this crate turns S3 requests (SigV4, XML, S3 error codes)
//! and admin requests into calls on it. Entry points: [`s3_service`] + [`serve_s3`] and
//! [`admin_router`] + [`serve_admin`].

pub mod admin;
pub mod audit;
pub mod auth;
pub mod backend;
pub mod checksum;
pub mod error;
mod headers;
pub mod range;
mod s3;
pub mod serve;

pub use admin::{admin_router, AdminToken, MetricsFn};
pub use audit::{AuditedBody, RequestId, S3HttpService};
pub use auth::Credentials;
pub use backend::*;
pub use error::{to_s3_error, wire_code, WireCode};
pub use s3::{CofferS3, ConnectionInfo};
pub use serve::{
    s3_service, serve_admin, serve_admin_with, serve_s3, serve_s3_with, HandshakeHook,
    ServeOptions, ServiceConfigError,
};
