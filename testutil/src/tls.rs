//! A certificate check for tests that open TLS themselves (to send exact frames, or to see
//! what the server presents): the certificate pinned by fingerprint, or any certificate,
//! with the handshake signature always checked by rustls with the certificate's key.

use std::sync::Arc;

use ftlib::Fingerprint;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Accepts the certificate whose fingerprint is `pin`, or any certificate without one.
#[derive(Debug)]
pub struct TestVerifier {
    pin: Option<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl TestVerifier {
    /// Accepts only the certificate with this fingerprint.
    pub fn pinned(pin: Fingerprint) -> Arc<TestVerifier> {
        Arc::new(TestVerifier {
            pin: Some(pin),
            provider: provider(),
        })
    }

    /// Accepts any certificate (signatures still checked).
    pub fn any() -> Arc<TestVerifier> {
        Arc::new(TestVerifier {
            pin: None,
            provider: provider(),
        })
    }
}

/// The ring provider, picked explicitly as ftlib does.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

impl ServerCertVerifier for TestVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            Some(pin) if Fingerprint::of_certificate(end_entity) != pin => {
                Err(rustls::Error::General("not the pinned certificate".into()))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
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
