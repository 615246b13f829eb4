//! Integration tests of the public crypto API, one binary to keep link time down.

mod fuzz;
mod fuzz_bodies;
mod kat;
mod keys;
mod props;
mod ranges;
mod reference;
mod roundtrip;
mod stream_keys;
mod support;
mod tamper;
mod vectors;
