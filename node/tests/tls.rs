//! HTTPS end to end (issue 5): certificates from `coffer certs`, aws-sdk-s3 over HTTPS, SNI
//! selection from --tls-dir, protocol versions, the post-quantum hybrid key exchange, reload on
//! SIGHUP and on changed files, and the refusal of plain HTTP off loopback.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tls::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_round_trip_over_https_with_coffer_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_node(dir.path());
    let server = start_tls(pair_args(&cert, &key), ca.join("ca.pem")).await;
    assert!(server.s3_endpoint().starts_with("https://"));

    let s3 = sdk_client_trusting(&server, &ca.join("ca.pem"));
    let bucket = bucket_name("tls");
    create_bucket(&s3, &bucket).await;
    let body = pseudo_random(3 * MIB + 17, 5);
    put_bytes(&s3, &bucket, "obj", &body).await;
    assert_same_bytes(
        &get_bytes(&s3, &bucket, "obj").await,
        &body,
        "GET over HTTPS",
    );

    // A client that trusts another CA is refused (certificate verification fails).
    let other = dir.path().join("other-ca");
    make_ca(&other);
    let untrusting = sdk_client_trusting(&server, &other.join("ca.pem"));
    let err = untrusting
        .list_buckets()
        .send()
        .await
        .expect_err("a client not trusting the CA must fail");
    let msg = format!("{err:?}");
    assert!(
        msg.contains("certificate") || msg.contains("Certificate") || msg.contains("UnknownIssuer"),
        "{msg}"
    );
    let raw = https_request(
        client_config(&[&other.join("ca.pem")], None, None),
        &server.s3_addr(),
        None,
        "GET",
        "/",
        &[],
        b"",
    )
    .await;
    assert!(raw.is_err(), "raw rustls client with the wrong CA: {raw:?}");

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = http_request(&server.s3_addr(), "GET", "/", &[], b"").await;
    assert!(
        plain.as_ref().map(|r| r.status == 0).unwrap_or(true) || plain.is_err(),
        "{plain:?}"
    );

    // The admin listener is HTTPS too, and handshakes are counted by group.
    let (r, n) = https_request(
        client_config(&[&ca.join("ca.pem")], None, None),
        &server.admin_addr(),
        Some("localhost"),
        "GET",
        "/api/v1/health",
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.brief());
    assert_eq!(n.group, Some(rustls::NamedGroup::X25519MLKEM768));
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let (m, _) = https_request(
        client_config(&[&ca.join("ca.pem")], None, None),
        &server.admin_addr(),
        None,
        "GET",
        "/metrics",
        &[("Authorization", auth.as_str())],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(m.status, 200, "{}", m.brief());
    assert!(
        m.text()
            .contains("coffer_tls_handshakes_total{group=\"X25519MLKEM768\"}"),
        "{}",
        m.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_selects_the_matching_certificate_and_no_sni_gets_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    make_ca(&ca);
    let tls_dir = dir.path().join("tls");
    let (one, _) = make_node_cert(&ca, "one", "one.coffer.test", &tls_dir);
    let (two, _) = make_node_cert(&ca, "two", "two.coffer.test", &tls_dir);
    let (default, _) = make_node_cert(&ca, "default", "default.coffer.test", &tls_dir);
    let server = start_tls(
        vec!["--tls-dir".into(), tls_dir.display().to_string()],
        ca.join("ca.pem"),
    )
    .await;
    let cfg = client_config(&[&ca.join("ca.pem")], None, None);
    for (sni, file, cn) in [
        (Some("one.coffer.test"), &one, "one"),
        (Some("two.coffer.test"), &two, "two"),
        (None, &default, "default"),
        (Some("unknown.coffer.test"), &default, "default"),
    ] {
        let n = match tls_connect(cfg.clone(), &server.s3_addr(), sni).await {
            Ok((_, n)) => n,
            // An unknown name gets the default certificate, which the client (rightly) rejects
            // for that name.
            Err(e) if sni == Some("unknown.coffer.test") => {
                assert!(
                    e.contains("certificate") || e.contains("NotValidForName"),
                    "{e}"
                );
                continue;
            }
            Err(e) => panic!("{sni:?}: {e}"),
        };
        let want = pem_certs(file);
        assert_eq!(
            n.peer_certs[0],
            want[0],
            "{sni:?} must get {}",
            file.display()
        );
        let ee = webpki::EndEntityCert::try_from(&n.peer_certs[0]).unwrap();
        let subject = ee.subject();
        assert!(
            subject.windows(cn.len()).any(|w| w == cn.as_bytes()),
            "{sni:?}: subject must name {cn}"
        );
        if let Some(name) = sni {
            let names: Vec<&str> = ee.valid_dns_names().collect();
            assert_eq!(names, vec![name]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_versions_and_post_quantum_key_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_node(dir.path());
    let server = start_tls(pair_args(&cert, &key), ca.join("ca.pem")).await;
    let ca_pem = ca.join("ca.pem");

    // Only X25519MLKEM768 offered: the handshake completes with it.
    let pq_only = client_config(
        &[&ca_pem],
        Some(&[&rustls::version::TLS13]),
        Some(vec![rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768]),
    );
    let (r, n) = https_request(
        pq_only,
        &server.s3_addr(),
        Some("localhost"),
        "GET",
        "/",
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(n.group, Some(rustls::NamedGroup::X25519MLKEM768));
    assert_eq!(n.version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(
        r.status,
        403,
        "unsigned request, but over TLS: {}",
        r.brief()
    );

    // Default client: the hybrid group is preferred.
    let (_, n) = tls_connect(
        client_config(&[&ca_pem], None, None),
        &server.s3_addr(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(n.group, Some(rustls::NamedGroup::X25519MLKEM768));

    // Classical fallback.
    let classical = client_config(
        &[&ca_pem],
        None,
        Some(vec![rustls::crypto::aws_lc_rs::kx_group::X25519]),
    );
    let (_, n) = tls_connect(classical, &server.s3_addr(), None)
        .await
        .unwrap();
    assert_eq!(n.group, Some(rustls::NamedGroup::X25519));

    // A TLS 1.2-only client succeeds.
    let tls12 = client_config(&[&ca_pem], Some(&[&rustls::version::TLS12]), None);
    let (r, n) = https_request(tls12, &server.s3_addr(), None, "GET", "/", &[], b"")
        .await
        .unwrap();
    assert_eq!(n.version, Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(r.status, 403);

    // TLS 1.0 and 1.1 are refused (openssl, when the machine has it; rustls cannot speak them).
    let have_openssl = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_openssl {
        // Never a silent pass in CI: the machine kind CI runs on has openssl.
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "openssl is needed to check the TLS 1.0/1.1 refusal");
        eprintln!("openssl not found: TLS 1.0/1.1 refusal checked by the server config only");
        return;
    }
    for flag in ["-tls1", "-tls1_1"] {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &server.s3_addr(), flag])
            // Old protocols are disabled in OpenSSL 3's default security level.
            .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "openssl {flag} must fail: {text}");
        assert!(
            !text.contains("BEGIN CERTIFICATE") && !text.contains("Cipher is ECDHE"),
            "openssl {flag} must not complete a handshake: {text}"
        );
    }
    // The same openssl completes a TLS 1.2 handshake (so the refusal above is about versions).
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &server.s3_addr(), "-tls1_2"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("BEGIN CERTIFICATE"),
        "openssl -tls1_2: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_certificates_and_open_downloads_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_node(dir.path());
    let ca_pem = ca.join("ca.pem");
    // The file check off: this test is about the signal alone.
    let mut args = pair_args(&cert, &key);
    args.extend(["--tls-watch-ms".into(), "0".into()]);
    let server = start_tls(args, ca_pem.clone()).await;
    let old_leaf = pem_certs(&cert)[0].clone();

    let body = pseudo_random(16 * MIB, 9);
    let download = OpenDownload::begin(&server, &ca_pem, &body).await;
    assert_eq!(download.leaf, old_leaf);

    // New certificate files, then SIGHUP.
    let (ok, text) = coffer_certs(&[
        "node",
        "--ca",
        &ca.display().to_string(),
        "--name",
        "node1",
        "--dns",
        "localhost",
        "--ip",
        "127.0.0.1",
        "--out",
        &dir.path().join("tls").display().to_string(),
        "--force",
    ]);
    assert!(ok, "{text}");
    let new_leaf = pem_certs(&cert)[0].clone();
    assert_ne!(new_leaf, old_leaf);
    // Without the signal nothing changes (the file check is off).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served_leaf(&ca_pem, &server.s3_addr()).await, old_leaf);
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.pid().unwrap().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_leaf(
        &ca_pem,
        &server.s3_addr(),
        &new_leaf,
        Duration::from_secs(15),
    )
    .await;

    // The download that started before the reload completes intact.
    download.finish(&body).await;
    assert!(server_is_alive(server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_certificate_files_reload_without_a_signal() {
    const WATCH_MS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_node(dir.path());
    let ca_pem = ca.join("ca.pem");
    let mut args = pair_args(&cert, &key);
    args.extend(["--tls-watch-ms".into(), WATCH_MS.to_string()]);
    let server = start_tls(args, ca_pem.clone()).await;
    let old_leaf = pem_certs(&cert)[0].clone();

    let body = pseudo_random(16 * MIB, 11);
    let download = OpenDownload::begin(&server, &ca_pem, &body).await;
    assert_eq!(download.leaf, old_leaf);

    // The new pair is made elsewhere and moved in with rename, as an operator's script would.
    let staging = dir.path().join("staging");
    let (new_cert, new_key) = make_node_cert(&ca, "node1", "localhost", &staging);
    let new_leaf = pem_certs(&new_cert)[0].clone();
    assert_ne!(new_leaf, old_leaf);

    // Half a pair (the new certificate, still the old key) must not replace the working one:
    // for several checks, new handshakes keep getting the old certificate.
    std::fs::rename(&new_cert, &cert).unwrap();
    let until = Instant::now() + Duration::from_millis(6 * WATCH_MS);
    let mut checks = 0;
    while Instant::now() < until && checks < 100 {
        assert_eq!(
            served_leaf(&ca_pem, &server.s3_addr()).await,
            old_leaf,
            "a broken pair replaced the working one"
        );
        checks += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The key follows: the pair is whole, and new handshakes get it with no signal sent.
    std::fs::rename(&new_key, &key).unwrap();
    wait_for_leaf(
        &ca_pem,
        &server.s3_addr(),
        &new_leaf,
        Duration::from_secs(15),
    )
    .await;

    // The download that started before both changes completes intact.
    download.finish(&body).await;
    let log = std::fs::read_to_string(server.root_dir().join("stderr.1.log")).unwrap();
    assert!(
        log.contains("TLS reload failed") && log.contains("file change"),
        "the broken pair is reported: {log}"
    );
    assert!(log.contains("TLS certificate reloaded"), "{log}");
    assert!(server_is_alive(server).await);
}

async fn server_is_alive(mut server: TestServer) -> bool {
    let alive = server.is_running();
    server.stop().await && alive
}

#[test]
fn non_loopback_plain_http_is_refused_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(coffer_bin())
        .args(["server", "--data"])
        .arg(dir.path().join("data"))
        .args(["--s3-addr", "0.0.0.0:0", "--admin-addr", "127.0.0.1:0"])
        .env_remove("RUST_BACKTRACE")
        .env_remove("COFFER_INSECURE_HTTP")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must exit non-zero: {stderr}");
    assert!(
        stderr.contains("refusing plain HTTP on non-loopback address 0.0.0.0:0")
            && stderr.contains("--insecure-http"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before touching the data dir"
    );
}

#[test]
fn certs_cli_refuses_to_overwrite_and_keys_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dev");
    let args = [
        "self-signed",
        "--dns",
        "localhost",
        "--ip",
        "127.0.0.1",
        "--out",
    ];
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.push(out.display().to_string());
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let (ok, text) = coffer_certs(&refs);
    assert!(ok, "{text}");
    let mode = std::fs::metadata(out.join("server.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let before = std::fs::read(out.join("server.key")).unwrap();
    let (ok, text) = coffer_certs(&refs);
    assert!(!ok, "second run must fail");
    assert!(
        text.contains("already exists") && text.contains("--force"),
        "{text}"
    );
    assert_eq!(std::fs::read(out.join("server.key")).unwrap(), before);
    let mut forced = refs.clone();
    forced.push("--force");
    let (ok, text) = coffer_certs(&forced);
    assert!(ok, "{text}");
    assert_ne!(std::fs::read(out.join("server.key")).unwrap(), before);
}

#[test]
fn certs_cli_writes_the_node_id_into_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    make_ca(&ca);
    let out = dir.path().join("tls");
    let (ok, text) = coffer_certs(&[
        "node",
        "--ca",
        &ca.display().to_string(),
        "--name",
        "node3",
        "--node-id",
        "3",
        "--dns",
        "node3.test",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(ok, "{text}");
    let leaf = pem_certs(&out.join("node3.pem"))[0].clone();
    assert_eq!(coffer_cluster::node_id_of_cert(&leaf), Ok(3));
    // Without the flag: a valid certificate for HTTPS that names no node.
    let plain = make_node_cert(&ca, "web", "web.test", &out).0;
    assert_eq!(
        coffer_cluster::node_id_of_cert(&pem_certs(&plain)[0]),
        Err(coffer_cluster::CertIdError::Missing)
    );
}
