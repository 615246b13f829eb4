//! Arbitrary blobs into `unseal_key`, and sealed keys with one byte damaged. Must never panic.
//! The body is shared with the CI test crypto/tests/suite/fuzz.rs.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/suite/fuzz_bodies.rs"]
mod fuzz_bodies;

fuzz_target!(|data: &[u8]| fuzz_bodies::sealed_key(data));
