//! Secrets as files (`COFFER_*_FILE`, how Docker and Compose hand them over) and `coffer admin
//! health` (the containers' health check).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::kms::run_until_exit;
use common::*;

fn health(admin_url: &str) -> (bool, String) {
    let out = Command::new(coffer_bin())
        .args([
            "admin",
            "health",
            "--timeout-ms",
            "2000",
            "--admin-url",
            admin_url,
        ])
        .env_remove("COFFER_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run coffer admin health");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn a_node_takes_its_secrets_from_files_and_reports_health() {
    let server = TestServer::start(ServerOpts {
        secrets_from_files: true,
        ..Default::default()
    })
    .await;
    // The root credentials from the files work; one trailing newline was dropped.
    let c = server.client();
    c.create_bucket().bucket("from-files").send().await.unwrap();
    c.put_object()
        .bucket("from-files")
        .key("k")
        .body(b"hello".to_vec().into())
        .send()
        .await
        .unwrap();
    let wrong = server.client_with(ACCESS_KEY, &format!("{SECRET_KEY}\n"));
    assert!(wrong.list_buckets().send().await.is_err());
    // So does the admin token (a node alone answers its own status).
    let r = server.admin("GET", "/api/v1/cluster", b"").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = server.admin("GET", "/api/v1/kms/status", b"").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // `coffer admin health`: exit 0 and the health JSON, no token needed.
    let (ok, out) = health(&format!("http://{}", server.admin_addr()));
    assert!(ok, "{out}");
    assert!(out.trim_start().starts_with('{'), "{out}");
    // Nothing listening: a non-zero exit that names the address.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let (ok, out) = health(&closed);
    assert!(!ok, "{out}");
    assert!(out.contains("cannot reach the admin API"), "{out}");
}

#[test]
fn a_secret_given_twice_or_unreadable_stops_start_up_without_showing_it() {
    for (extra, want) in [
        (
            vec![
                ("COFFER_ROOT_PASSWORD", SECRET_KEY.to_string()),
                ("COFFER_ROOT_PASSWORD_FILE", "/etc/hostname".to_string()),
            ],
            "set COFFER_ROOT_PASSWORD or COFFER_ROOT_PASSWORD_FILE, not both",
        ),
        (
            vec![
                ("COFFER_ROOT_PASSWORD", SECRET_KEY.to_string()),
                ("COFFER_ADMIN_TOKEN_FILE", "/no/such/token".to_string()),
            ],
            "COFFER_ADMIN_TOKEN_FILE=/no/such/token",
        ),
    ] {
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
            .env_remove("COFFER_ADMIN_TOKEN")
            .env_remove("RUST_BACKTRACE")
            .current_dir(dir.path());
        for (k, v) in &extra {
            cmd.env(k, v);
        }
        let (code, out) = run_until_exit(cmd, Duration::from_secs(60));
        assert!(matches!(code, Some(c) if c != 0), "{code:?}: {out}");
        assert!(out.contains(want), "lacks {want:?}: {out}");
        assert!(!out.contains(SECRET_KEY), "showed the secret: {out}");
        assert!(!out.contains("coffer is serving"), "{out}");
    }
}
