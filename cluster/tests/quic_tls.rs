//! Mutual TLS on the QUIC transport: who is refused (before any handler runs), and which key
//! exchange is negotiated.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::certs::{self, Issued};
use coffer_cluster::quic::{frame, ALPN};
use coffer_cluster::{NodeTls, QuicConfig, QuicNode, Transport, TransportError};
use common::*;
use rustls::crypto::{ActiveKeyExchange, CompletedKeyExchange, SupportedKxGroup};
use rustls::NamedGroup;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn chain_of(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A plain quinn client (not our transport) that trusts `ca` for the server and presents
/// `client` if given; performs one "echo" call. Any failure comes back as text.
async fn raw_call(server: SocketAddr, ca: &Ca, client: Option<&Issued>) -> Result<Bytes, String> {
    let provider = coffer_cluster::tls::provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(chain_of(&ca.0.cert_pem).remove(0)).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match client {
        None => builder.with_no_client_auth(),
        Some(c) => builder
            .with_client_auth_cert(
                chain_of(&c.cert_pem),
                PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).unwrap();
    let mut endpoint = quinn::Endpoint::client(any_port()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let attempt = async {
        let conn = endpoint
            .connect(server, "localhost")
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        // TLS 1.3: the client may finish its side before the server has judged its
        // certificate, so also try a call: it must fail as well.
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        frame::write_request(&mut send, "echo", Bytes::from_static(b"x"), 1024)
            .await
            .map_err(|e| e.to_string())?;
        let (_, body) = frame::read_reply(&mut recv, 1024)
            .await
            .map_err(|e| e.to_string())?;
        Ok(body)
    };
    let out = tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()));
    endpoint.close(0u32.into(), b"");
    out
}

/// A self-signed certificate that even names a node id.
fn self_signed_with_node_id(id: u64) -> Issued {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.subject_alt_names.push(rcgen::SanType::URI(
        rcgen::Ia5String::try_from(coffer_cluster::node_id_uri(id)).unwrap(),
    ));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Issued {
        cert_pem: cert.pem(),
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
    }
}

#[tokio::test]
async fn the_raw_client_works_with_a_proper_certificate() {
    // Control for the refusals below: the same client succeeds with a CA-signed node cert.
    let ca = Ca::generate();
    let server = node(&ca, 2);
    let echo = with_echo(&server);
    let body = raw_call(server.local_addr(), &ca, Some(&ca.node(7)))
        .await
        .unwrap();
    assert_eq!(&body[..], b"7:x");
    assert_eq!(echo.calls(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn clients_without_a_valid_certificate_are_refused_before_any_rpc() {
    let ca = Ca::generate();
    let other = Ca::generate();
    let server = node(&ca, 2);
    let echo = with_echo(&server);
    let addr = server.local_addr();

    let no_cert = raw_call(addr, &ca, None).await;
    assert!(no_cert.is_err(), "no client certificate: {no_cert:?}");

    let self_signed = raw_call(addr, &ca, Some(&self_signed_with_node_id(1))).await;
    assert!(self_signed.is_err(), "self-signed: {self_signed:?}");

    let foreign = raw_call(addr, &ca, Some(&other.node(1))).await;
    assert!(foreign.is_err(), "other CA: {foreign:?}");

    // A CA-signed certificate without a node id is not a node certificate.
    let plain = certs::issue_node(
        &ca.0.cert_pem,
        &ca.0.key_pem,
        "plain",
        None,
        &["localhost".into()],
        &[],
    )
    .unwrap();
    let no_id = raw_call(addr, &ca, Some(&plain)).await;
    assert!(no_id.is_err(), "no node id: {no_id:?}");

    // Our own transport with a foreign certificate is refused too.
    let foreign_cert = other.node(1);
    let intruder = QuicNode::bind(QuicConfig::new(
        any_port(),
        NodeTls::from_pem(
            &foreign_cert.cert_pem,
            &foreign_cert.key_pem,
            &ca.0.cert_pem,
        )
        .unwrap(),
    ))
    .unwrap();
    let t = intruder.transport();
    t.set_peer(2, addr.to_string());
    let err = t.call(2, "echo", Bytes::new()).await.unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Unreachable { .. } | TransportError::Network { .. }
        ),
        "{err}"
    );

    assert_eq!(echo.calls(), 0, "no handler ran for a refused peer");
    intruder.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_under_another_ca_or_with_another_id_is_refused_by_the_client() {
    let ca = Ca::generate();
    let other = Ca::generate();
    // The server trusts our CA for clients but presents a certificate from another CA.
    let n = other.node(2);
    let foreign = QuicNode::bind(QuicConfig::new(
        any_port(),
        NodeTls::from_pem(&n.cert_pem, &n.key_pem, &ca.0.cert_pem).unwrap(),
    ))
    .unwrap();
    let foreign_echo = with_echo(&foreign);
    let honest3 = node(&ca, 3);
    let echo3 = with_echo(&honest3);

    let client = node(&ca, 1);
    let t = client.transport();
    t.set_peer(2, foreign.local_addr().to_string());
    let err = t.call(2, "echo", Bytes::new()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Unreachable { node: 2, .. }),
        "{err}"
    );
    assert_eq!(foreign_echo.calls(), 0);

    // Node 3 is genuine, but it is not node 4: an address-book mistake cannot misroute.
    t.set_peer(4, honest3.local_addr().to_string());
    let err = t.call(4, "echo", Bytes::new()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Unreachable { node: 4, .. }),
        "{err}"
    );
    assert_eq!(echo3.calls(), 0);

    client.shutdown().await;
    foreign.shutdown().await;
    honest3.shutdown().await;
}

#[test]
fn own_certificate_must_carry_a_node_id() {
    let ca = Ca::generate();
    let plain = certs::issue_node(
        &ca.0.cert_pem,
        &ca.0.key_pem,
        "p",
        None,
        &["a.test".into()],
        &[],
    )
    .unwrap();
    let err = NodeTls::from_pem(&plain.cert_pem, &plain.key_pem, &ca.0.cert_pem).unwrap_err();
    assert!(matches!(err, coffer_cluster::QuicError::NodeId(_)), "{err}");
}

/// Wraps a key-exchange group and records each time the server side runs it.
#[derive(Debug)]
struct Recording {
    inner: &'static dyn SupportedKxGroup,
    log: &'static Mutex<Vec<NamedGroup>>,
}

impl SupportedKxGroup for Recording {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        self.log.lock().unwrap().push(self.inner.name());
        self.inner.start()
    }

    fn start_and_complete(&self, peer: &[u8]) -> Result<CompletedKeyExchange, rustls::Error> {
        self.log.lock().unwrap().push(self.inner.name());
        self.inner.start_and_complete(peer)
    }

    fn ffdhe_group(&self) -> Option<rustls::ffdhe_groups::FfdheGroup<'static>> {
        self.inner.ffdhe_group()
    }

    fn name(&self) -> NamedGroup {
        self.inner.name()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }

    fn usable_for_version(&self, v: rustls::ProtocolVersion) -> bool {
        self.inner.usable_for_version(v)
    }
}

#[tokio::test]
async fn hybrid_post_quantum_key_exchange_is_negotiated() {
    // quinn exposes the negotiated group only behind a test-only feature, so the server's
    // provider records which group it actually ran.
    let log: &'static Mutex<Vec<NamedGroup>> = Box::leak(Box::new(Mutex::new(Vec::new())));
    let mut provider = (*coffer_cluster::tls::provider()).clone();
    assert_eq!(provider.kx_groups[0].name(), NamedGroup::X25519MLKEM768);
    provider.kx_groups = provider
        .kx_groups
        .iter()
        .map(|g| {
            let r: &'static dyn SupportedKxGroup =
                Box::leak(Box::new(Recording { inner: *g, log }));
            r
        })
        .collect();
    let ca = Ca::generate();
    let mut cfg = QuicConfig::new(any_port(), ca.tls(2));
    cfg.provider = Some(Arc::new(provider));
    let server = QuicNode::bind(cfg).unwrap();
    with_echo(&server);
    let client = node(&ca, 1);
    let t = client.transport();
    t.set_peer(2, server.local_addr().to_string());
    t.call(2, "echo", Bytes::new()).await.unwrap();
    assert_eq!(*log.lock().unwrap(), vec![NamedGroup::X25519MLKEM768]);
    client.shutdown().await;
    server.shutdown().await;
}
