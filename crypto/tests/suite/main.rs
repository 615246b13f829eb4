//! Integration tests of the public crypto API, one binary to keep link time down.

mod kat;
mod keys;
mod ranges;
mod roundtrip;
mod support;
mod tamper;
