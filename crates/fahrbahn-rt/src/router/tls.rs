//! TLS for the router's listeners (rustls, behind the `tls` feature).

pub(crate) use imp::{Acceptor, accept, acceptor};

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

    pub(crate) fn acceptor(files: &TlsFiles) -> Result<Acceptor, Error> {
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
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(TlsError::Rustls)?;
        Ok(futures_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    pub(crate) async fn accept(
        acceptor: Acceptor,
        io: BoxTransport,
        mut deadline: Pin<Box<dyn AsyncTimer>>,
    ) -> Option<BoxTransport> {
        let mut handshake = acceptor.accept(io);
        let result = std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(r) = Pin::new(&mut handshake).poll(cx) {
                return std::task::Poll::Ready(Some(r));
            }
            deadline.as_mut().poll(cx).map(|()| None)
        })
        .await;
        match result {
            Some(Ok(stream)) => Some(Box::new(stream) as BoxTransport),
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

    pub(crate) fn acceptor(_files: &TlsFiles) -> Result<Acceptor, Error> {
        Err(TlsError::Disabled.into())
    }

    pub(crate) async fn accept(
        acceptor: Acceptor,
        _io: BoxTransport,
        _deadline: Pin<Box<dyn AsyncTimer>>,
    ) -> Option<BoxTransport> {
        match acceptor {}
    }
}
