//! Outgoing TLS to the KMS verifies against a configurable CA bundle (issue 5, "outgoing TLS",
//! for Vault/OpenBao): an OpenBao serving HTTPS with a certificate from `coffer certs` is
//! trusted with `COFFER_KMS_VAULT_CA`, and refused at start-up without it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::kms::{put_kms, run_until_exit, Bao, BaoTls};
use common::tls::{make_ca, make_node_cert};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_over_https_needs_the_configured_ca() {
    let certs = tempfile::tempdir().unwrap();
    let ca_dir = certs.path().join("ca");
    let ca = make_ca(&ca_dir);
    let (cert, key) = make_node_cert(&ca_dir, "bao", "localhost", &certs.path().join("bao"));
    let Some(bao) = Bao::start_with(Some(BaoTls {
        cert,
        key,
        ca: ca.clone(),
    }))
    .await
    else {
        return;
    };
    bao.create_key("coffer-sse", true).await;
    assert!(bao.url().starts_with("https://"));
    let env = |with_ca: bool| {
        let mut e: Vec<(String, String)> = [
            ("COFFER_KMS_PROVIDER", "vault".to_string()),
            ("COFFER_KMS_VAULT_ADDR", bao.url()),
            ("COFFER_KMS_VAULT_TOKEN", bao.root_token.clone()),
            ("COFFER_KMS_DEFAULT_KEY", "coffer-sse".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if with_ca {
            e.push(("COFFER_KMS_VAULT_CA".into(), ca.display().to_string()));
        }
        e
    };

    // Without the CA the certificate is not trusted: start-up stops, naming the provider.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(coffer_bin());
    cmd.arg("server")
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--s3-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--admin-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .env("COFFER_ROOT_USER", ACCESS_KEY)
        .env("COFFER_ROOT_PASSWORD", SECRET_KEY)
        .env("COFFER_ADMIN_TOKEN", ADMIN_TOKEN)
        .envs(env(false));
    let (code, out) = run_until_exit(cmd, Duration::from_secs(60));
    assert!(matches!(code, Some(c) if c != 0), "{code:?}: {out}");
    assert!(
        out.contains("KMS provider vault") && out.contains("cannot reach the KMS"),
        "{out}"
    );
    assert!(!out.contains(&bao.root_token), "{out}");

    // With it, objects round-trip through the HTTPS KMS.
    let server = TestServer::start(ServerOpts {
        extra_env: env(true),
        ..Default::default()
    })
    .await;
    let s3 = server.client();
    let bucket = bucket_name("kmstls");
    create_bucket(&s3, &bucket).await;
    let body = pseudo_random(33 * KIB, 5);
    put_kms(&s3, &bucket, "obj", "coffer-sse", &body).await;
    put_bytes(&s3, &bucket, "plain-sse", &body).await;
    assert_same_bytes(&get_bytes(&s3, &bucket, "obj").await, &body, "obj");
    assert_same_bytes(
        &get_bytes(&s3, &bucket, "plain-sse").await,
        &body,
        "plain-sse",
    );
}
