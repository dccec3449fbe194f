//! Trust for `https://` URLs that ringcast dials (the link behind a TLS-terminating proxy,
//! `-url` upstreams). rustls with the ring provider: pure Rust apart from ring's small C and
//! assembly, no OpenSSL to cross-compile for the Pi, and TLS 1.2 and 1.3 both.
//!
//! Trusted: the system's CA store (`/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`,
//! through rustls-native-certs) plus the PEM file of `-tls-ca`, for a proxy whose certificate
//! comes from a studio's own CA. Built once, on first use, after [`init`] has named the file.

use crate::error::Error;
use log::{info, warn};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::sync::{Arc, OnceLock};

static EXTRA_CA: OnceLock<Option<String>> = OnceLock::new();
static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();

/// Names the extra CA file (from `-tls-ca`; the config has checked that it reads).
pub fn init(extra_ca: Option<&str>) {
    let _ = EXTRA_CA.set(extra_ca.map(str::to_string));
}

/// The client configuration every `https://` connection uses.
pub fn client_config() -> Result<Arc<ClientConfig>, Error> {
    // Kept as text: the first build's error is every caller's, and an io::Error is no Clone.
    CONFIG
        .get_or_init(|| build().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::from)
}

fn build() -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for e in &system.errors {
        warn!("tls: system CA store: {e}");
    }
    let (added, ignored) = roots.add_parsable_certificates(system.certs);
    if ignored > 0 {
        warn!("tls: {ignored} system CA certificates could not be used");
    }
    if let Some(Some(path)) = EXTRA_CA.get() {
        for cert in read_pem(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("-tls-ca {path}: unusable certificate: {e}"))?;
        }
        info!("tls: trusting the CA certificates in {path} and {added} of the system's");
    }
    if roots.is_empty() {
        return Err(
            "no CA certificates to check https:// servers with: install ca-certificates or give -tls-ca"
                .into(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates in a PEM file; an error names the file and what is wrong with it.
pub fn read_pem(path: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("-tls-ca {path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("-tls-ca {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("-tls-ca {path}: no PEM certificates in it").into());
    }
    Ok(certs)
}
