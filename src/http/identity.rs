//! The certificate `-tls-address` presents: the PEM chain of `-tls-cert` and the key of
//! `-tls-key`, loaded at start-up (a bad pair stops the start with a clear error) and again
//! on `SIGHUP` (a bad pair is logged and the one in use kept).
//!
//! rustls asks [`Identity`] for the certificate at each handshake, so a reload changes what
//! new connections see and leaves connected listeners alone: their sessions already have
//! their keys. That is what a Let's Encrypt renewal hook needs (README, HTTPS).

use crate::error::Error;
use log::info;
use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::sync::Arc;

/// The certificate and key in use, and where they are read from.
pub struct Identity {
    cert_path: String,
    key_path: String,
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({}, {})", self.cert_path, self.key_path)
    }
}

impl Identity {
    /// Reads the pair; an error says which file is wrong and how.
    pub fn load(cert_path: &str, key_path: &str) -> Result<Arc<Identity>, Error> {
        let key = read_pair(cert_path, key_path)?;
        Ok(Arc::new(Identity {
            cert_path: cert_path.to_string(),
            key_path: key_path.to_string(),
            current: RwLock::new(Arc::new(key)),
        }))
    }

    /// Reads the files again; on success new handshakes use the new pair. On failure the
    /// pair in use stays, and the error says why.
    pub fn reload(&self) -> Result<(), Error> {
        let key = read_pair(&self.cert_path, &self.key_path)?;
        *self.current.write() = Arc::new(key);
        info!("tls: loaded {} again", self.cert_path);
        Ok(())
    }

    /// The server configuration of the TLS port: TLS 1.2 and 1.3, this identity.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, Error> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read()))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The chain and key, checked to belong together.
fn read_pair(cert_path: &str, key_path: &str) -> Result<CertifiedKey, Error> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| format!("-tls-cert {cert_path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("-tls-cert {cert_path}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("-tls-cert {cert_path}: no PEM certificate in it").into());
    }
    // PKCS#8, PKCS#1 (RSA) or SEC1 (EC): the first private key in the file.
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("-tls-key {key_path}: no usable PEM private key: {e}"))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        format!("-tls-cert {cert_path} with -tls-key {key_path}: {e} (not a pair, or a key type rustls cannot sign with)").into()
    })
}
