//! The version prefix of Vault's ciphertext, which is how Coffer records the key version.

use coffer_kms::vault_blob_version;

#[test]
fn version_prefix() {
    assert_eq!(vault_blob_version(b"vault:v1:abc"), Some(1));
    assert_eq!(vault_blob_version(b"vault:v12:abc"), Some(12));
    for bad in [&b"vault:vx:abc"[..], b"vault:v1", b"v1:abc", b""] {
        assert_eq!(vault_blob_version(bad), None);
    }
}
