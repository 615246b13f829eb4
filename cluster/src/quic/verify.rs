//! Certificate verifiers for mutual TLS between nodes.
//!
//! Both sides verify the peer's chain under the cluster CA only (no system roots) and require
//! the `coffer://node/<id>` SAN (see [`crate::identity`]). Host names are not checked: peers are
//! addressed by node id, so the server's certificate must name the id the client dialled,
//! which binds the connection to that node even if an address in the book is wrong or stale.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::identity::{node_id_of_cert, CertIdError, NodeId};

/// The server's certificate named another node than the one dialled.
#[derive(Debug, thiserror::Error)]
#[error("peer certificate is for node {found}, expected node {expected}")]
pub struct WrongNode {
    /// The node dialled.
    pub expected: NodeId,
    /// The node the certificate names.
    pub found: NodeId,
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

fn id_err(e: CertIdError) -> rustls::Error {
    other(e)
}

/// Server side: the stock webpki client verifier (client certificate mandatory, chain under the
/// CA) plus the node-id SAN, so a handshake without a node identity fails before any stream.
#[derive(Debug)]
pub(crate) struct NodeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl NodeClientVerifier {
    pub(crate) fn new(inner: Arc<dyn ClientCertVerifier>) -> Self {
        Self { inner }
    }
}

impl ClientCertVerifier for NodeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        node_id_of_cert(end_entity).map_err(id_err)?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Client side: the server's chain under the cluster CA for server auth, and its node-id SAN
/// equal to the node dialled.
#[derive(Debug)]
pub(crate) struct NodeServerVerifier {
    roots: Arc<RootCertStore>,
    algs: WebPkiSupportedAlgorithms,
    expected: NodeId,
}

impl NodeServerVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        algs: WebPkiSupportedAlgorithms,
        expected: NodeId,
    ) -> Self {
        Self {
            roots,
            algs,
            expected,
        }
    }
}

fn pki_error(e: webpki::Error) -> rustls::Error {
    use webpki::Error as W;
    match e {
        W::UnknownIssuer => CertificateError::UnknownIssuer.into(),
        W::CertExpired { .. } | W::InvalidCertValidity => CertificateError::Expired.into(),
        W::CertNotValidYet { .. } => CertificateError::NotValidYet.into(),
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature.into(),
        W::BadDer | W::BadDerTime => CertificateError::BadEncoding.into(),
        other_err => other(other_err),
    }
}

impl ServerCertVerifier for NodeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ee = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
        ee.verify_for_usage(
            self.algs.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(pki_error)?;
        let found = node_id_of_cert(end_entity).map_err(id_err)?;
        if found != self.expected {
            return Err(other(WrongNode {
                expected: self.expected,
                found,
            }));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
