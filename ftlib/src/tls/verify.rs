//! The client's check of the server's certificate: pinned by fingerprint, as SSH pins host
//! keys, instead of a chain to a certificate authority. Written here because rustls ships
//! only WebPKI verification; the signature checks are still rustls's own.

use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::identity::Fingerprint;

/// Accepts the server's certificate when its fingerprint is the expected one, or any
/// certificate when none is expected yet (first contact); remembers what it saw either way.
///
/// The handshake signature is checked with the presented certificate's key, so a peer
/// accepted here holds the private key of the certificate whose fingerprint was compared.
/// Names and validity dates are not checked: the fingerprint is the identity.
#[derive(Debug)]
pub(super) struct Pinned {
    expected: Option<Fingerprint>,
    seen: Mutex<Option<Fingerprint>>,
    provider: Arc<CryptoProvider>,
}

impl Pinned {
    pub(super) fn new(expected: Option<Fingerprint>, provider: Arc<CryptoProvider>) -> Pinned {
        Pinned {
            expected,
            seen: Mutex::new(None),
            provider,
        }
    }

    /// The fingerprint the server presented, once it has.
    pub(super) fn seen(&self) -> Option<Fingerprint> {
        *self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of_certificate(end_entity);
        *self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(presented);
        match self.expected {
            Some(expected) if expected != presented => Err(rustls::Error::General(format!(
                "the server presented {presented}, not {expected}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The configurations allow TLS 1.3 only.
        Err(rustls::Error::General("TLS 1.2 is not spoken".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
