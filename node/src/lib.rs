//! The Coffer node: configuration, actors, the encrypted data path, and start-up.

pub mod actors;
pub mod admin_cli;
pub mod cluster;
pub mod cluster_config;
pub mod config;
pub mod drive;
pub mod heal;
pub mod keys;
pub mod kms_admin;
pub mod kms_config;
pub mod kms_meter;
pub mod kms_registry;
pub mod kms_setup;
pub mod manifest;
pub mod metrics;
pub mod pipeline;
pub mod rewrap;
pub mod sealed_meta;
pub mod seams;
pub mod secret_env;
pub mod secrets;
pub mod server;
pub mod service;
pub mod shards;
mod tls_reload;
