//! Start-up checks of the KMS (issue 4, acceptance 4): a wrong address, a wrong token or an
//! unknown default key makes `coffer server` exit non-zero with a message that names the
//! provider and the cause and contains no secret.

mod common;

use std::process::Command;
use std::time::Duration;

use common::kms::{aws_env, run_until_exit, Bao, Moto, AWS_TEST_SECRET};
use common::*;

const EXIT_WITHIN: Duration = Duration::from_secs(60);

fn coffer(dir: &std::path::Path, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(coffer_bin());
    cmd.arg("server")
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--s3-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--admin-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .env("COFFER_ROOT_USER", ACCESS_KEY)
        .env("COFFER_ROOT_PASSWORD", SECRET_KEY)
        .env("COFFER_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("RUST_BACKTRACE")
        // Debug logging on: not even that may show a secret.
        .env("COFFER_LOG", "debug")
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs coffer with `env` and checks: non-zero exit, every `want` in the output, no `secret`.
fn expect_refusal(env: Vec<(String, String)>, want: &[&str], secrets: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = run_until_exit(coffer(dir.path(), &env), EXIT_WITHIN);
    assert!(
        matches!(code, Some(c) if c != 0),
        "coffer must exit non-zero, got {code:?}: {out}"
    );
    for w in want {
        assert!(out.contains(w), "output lacks {w:?}: {out}");
    }
    for s in secrets {
        assert!(!out.contains(s), "output contains a secret: {out}");
    }
    // It stopped before serving: nothing was ever listening.
    assert!(!out.contains("coffer is serving"), "{out}");
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_wrong_address_token_or_key_stops_start_up() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.create_key("present", true).await;
    bao.create_key("not-derived", false).await;
    let url = bao.url();
    let token = bao.root_token.clone();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let base = |addr: &str, tok: &str, key: &str| {
        env(&[
            ("COFFER_KMS_PROVIDER", "vault"),
            ("COFFER_KMS_VAULT_ADDR", addr),
            ("COFFER_KMS_VAULT_TOKEN", tok),
            ("COFFER_KMS_DEFAULT_KEY", key),
        ])
    };
    let secrets = [token.as_str(), "wrong-token-0xC0FFEE"];
    expect_refusal(
        base(&dead, &token, "present"),
        &["KMS provider vault", &dead, "cannot reach the KMS"],
        &secrets,
    );
    expect_refusal(
        base(&url, "wrong-token-0xC0FFEE", "present"),
        &["KMS provider vault", &url, "refused the credentials"],
        &secrets,
    );
    expect_refusal(
        base(&url, &token, "absent"),
        &["KMS provider vault", "\"absent\"", "does not exist"],
        &secrets,
    );
    expect_refusal(
        base(&url, &token, "not-derived"),
        &["KMS provider vault", "derived=true"],
        &secrets,
    );
    // Missing pieces are configuration errors that say what to set.
    expect_refusal(
        env(&[
            ("COFFER_KMS_PROVIDER", "vault"),
            ("COFFER_KMS_VAULT_ADDR", &url),
            ("COFFER_KMS_DEFAULT_KEY", "present"),
        ]),
        &["vault", "COFFER_KMS_VAULT_TOKEN"],
        &secrets,
    );
    // And the right settings start.
    let server = TestServer::start(ServerOpts {
        extra_env: base(&url, &token, "present"),
        ..Default::default()
    })
    .await;
    let s3 = server.client();
    let bucket = bucket_name("startup");
    create_bucket(&s3, &bucket).await;
    put_bytes(&s3, &bucket, "k", b"hello").await;
    assert_eq!(get_bytes(&s3, &bucket, "k").await, b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_wrong_endpoint_or_key_stops_start_up() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let base = |endpoint: &str, key: &str| {
        let mut e = env(&[
            ("COFFER_KMS_PROVIDER", "aws"),
            ("COFFER_KMS_AWS_ENDPOINT", endpoint),
            ("COFFER_KMS_AWS_REGION", "us-east-1"),
            ("COFFER_KMS_DEFAULT_KEY", key),
        ]);
        e.extend(aws_env(dir.path()));
        e
    };
    expect_refusal(
        base(&dead, "alias/anything"),
        &["KMS provider aws", &dead, "cannot reach the KMS"],
        &[AWS_TEST_SECRET],
    );
    expect_refusal(
        base(&moto.url(), "alias/absent"),
        &["KMS provider aws", "\"alias/absent\"", "does not exist"],
        &[AWS_TEST_SECRET],
    );
}
