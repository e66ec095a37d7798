//! TLS for the PostgreSQL source, on the rustls stack the HTTP and SMTP clients already use.
//! The server's certificate is always checked, against the system's trust store or, with
//! `ca_file`, against the authorities in that PEM file only; the host name (or IP address)
//! must match it. There is no "encrypt but trust anything" mode.

use anyhow::Context;
use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for `tls: require`.
pub fn connector(ca_file: Option<&Path>) -> anyhow::Result<MakeRustlsConnect> {
    let config = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read ca_file {}", path.display()))?;
            for cert in certs {
                let cert = cert.with_context(|| format!("ca_file {}", path.display()))?;
                roots
                    .add(cert)
                    .with_context(|| format!("ca_file {}: a certificate", path.display()))?;
            }
            if roots.is_empty() {
                anyhow::bail!("ca_file {} holds no certificate", path.display());
            }
            ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::ConfigVerifierExt;
            ClientConfig::with_platform_verifier()
                .context("cannot load the system's certificate authorities")?
        }
    };
    Ok(MakeRustlsConnect::new(config))
}
