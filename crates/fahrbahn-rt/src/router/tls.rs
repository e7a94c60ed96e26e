//! TLS for the router's listeners (rustls, behind the `tls` feature).

pub(crate) use imp::{Acceptor, accept, acceptor};

/// The SHA-256 fingerprint of a certificate (its DER bytes), as lowercase
/// hex without separators: what a `tls` principal lists.
///
/// ```
/// assert_eq!(fahrbahn_rt::certificate_fingerprint(b"").len(), 64);
/// ```
pub fn certificate_fingerprint(der: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(feature = "tls")]
mod imp {
    use std::pin::Pin;
    use std::sync::Arc;

    use futures_rustls::rustls;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    use super::super::TlsFiles;
    use crate::error::{ConfigError, Error, TlsError};
    use crate::runtime::{AsyncTimer, BoxTransport};

    pub(crate) type Acceptor = futures_rustls::TlsAcceptor;

    /// Accepts any client certificate whose handshake signature is valid:
    /// the router then matches its fingerprint against the `tls`
    /// principals (certificate pinning, no CA), so a certificate nobody
    /// configured authenticates no one. Client certificates are optional:
    /// the listener's other methods work without one.
    #[derive(Debug)]
    struct PinnedClientCerts {
        algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
    }

    impl rustls::server::danger::ClientCertVerifier for PinnedClientCerts {
        fn client_auth_mandatory(&self) -> bool {
            false
        }

        fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
            &[]
        }

        fn verify_client_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _now: rustls_pki_types::UnixTime,
        ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
            Ok(rustls::server::danger::ClientCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }

    pub(crate) fn acceptor(files: &TlsFiles, client_certs: bool) -> Result<Acceptor, Error> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.certificate)
            .and_then(|it| it.collect())
            .map_err(|source| ConfigError::Pem {
                path: files.certificate.clone().into(),
                source,
            })?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| ConfigError::Pem {
            path: files.key.clone().into(),
            source,
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?;
        let builder = if client_certs {
            builder.with_client_cert_verifier(Arc::new(PinnedClientCerts { algorithms }))
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(TlsError::Rustls)?;
        Ok(futures_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    pub(crate) async fn accept(
        acceptor: Acceptor,
        io: BoxTransport,
        mut deadline: Pin<Box<dyn AsyncTimer>>,
    ) -> Option<(BoxTransport, Option<String>)> {
        let mut handshake = acceptor.accept(io);
        let result = std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(r) = Pin::new(&mut handshake).poll(cx) {
                return std::task::Poll::Ready(Some(r));
            }
            deadline.as_mut().poll(cx).map(|()| None)
        })
        .await;
        match result {
            Some(Ok(stream)) => {
                let fingerprint = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|cert| super::certificate_fingerprint(cert.as_ref()));
                Some((Box::new(stream) as BoxTransport, fingerprint))
            }
            Some(Err(e)) => {
                log::debug!("TLS handshake failed: {e}");
                None
            }
            None => {
                log::debug!("TLS handshake timed out");
                None
            }
        }
    }
}

#[cfg(not(feature = "tls"))]
mod imp {
    use std::pin::Pin;

    use super::super::TlsFiles;
    use crate::error::{Error, TlsError};
    use crate::runtime::{AsyncTimer, BoxTransport};

    #[derive(Debug, Clone)]
    pub(crate) enum Acceptor {}

    pub(crate) fn acceptor(_files: &TlsFiles, _client_certs: bool) -> Result<Acceptor, Error> {
        Err(TlsError::Disabled.into())
    }

    pub(crate) async fn accept(
        acceptor: Acceptor,
        _io: BoxTransport,
        _deadline: Pin<Box<dyn AsyncTimer>>,
    ) -> Option<(BoxTransport, Option<String>)> {
        match acceptor {}
    }
}
