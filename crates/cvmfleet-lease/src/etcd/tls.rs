//! TLS material for etcd, parsed and checked once, when the flags are read: a CA that is not PEM,
//! a PEM file without a certificate or a key that does not match its certificate is an error
//! naming the file's role and what is wrong, not an unreachable store at the first request.
//!
//! The crypto provider is rustls' `ring` one, the only one compiled into cvmfleet (issue 23 §2):
//! it builds from Rust, a little assembly and C with the plain `cc` crate, in a fraction of
//! `aws-lc-sys`'s time, and is maintained with rustls itself.

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Which piece of TLS material an error is about; the CLI turns it into the flag and the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsPart {
    /// The CA certificate that signed the servers' certificates.
    Ca,
    /// The client certificate.
    ClientCertificate,
    /// The client certificate's private key.
    ClientKey,
}

impl fmt::Display for TlsPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsPart::Ca => "CA certificate",
            TlsPart::ClientCertificate => "client certificate",
            TlsPart::ClientKey => "client key",
        })
    }
}

/// What is wrong with a piece of TLS material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file holds no PEM at all, or broken PEM.
    #[error("the {part} is not PEM ({detail})")]
    NotPem {
        /// Which file.
        part: TlsPart,
        /// What the PEM reader said.
        detail: String,
    },
    /// PEM, but without the section this file must hold.
    #[error("the {part} holds no {wanted}")]
    Missing {
        /// Which file.
        part: TlsPart,
        /// What was looked for (`certificate`, `private key`).
        wanted: &'static str,
    },
    /// The certificate cannot be used as a trust anchor.
    #[error("the {part} is not a usable certificate: {detail}")]
    Unusable {
        /// Which file.
        part: TlsPart,
        /// What rustls said.
        detail: String,
    },
    /// The key is not the one of the client certificate (or rustls cannot use it).
    #[error("the client key does not match the client certificate ({detail})")]
    KeyMismatch {
        /// What rustls said.
        detail: String,
    },
}

impl TlsError {
    /// The file the error is about.
    #[must_use]
    pub fn part(&self) -> TlsPart {
        match self {
            TlsError::NotPem { part, .. }
            | TlsError::Missing { part, .. }
            | TlsError::Unusable { part, .. } => *part,
            TlsError::KeyMismatch { .. } => TlsPart::ClientKey,
        }
    }
}

/// TLS for the connection to etcd: a client configuration built from checked PEM material.
#[derive(Clone)]
pub struct EtcdTls {
    config: Arc<ClientConfig>,
    client_certificate: bool,
    server_name: Option<String>,
}

impl fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdTls")
            .field("client_certificate", &self.client_certificate)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The one crypto provider (see the module doc).
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(part: TlsPart, pem_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut certificates = Vec::new();
    let mut sections = 0usize;
    for item in <(pem::SectionKind, Vec<u8>)>::pem_slice_iter(pem_bytes) {
        let (kind, der) = item.map_err(|e| TlsError::NotPem { part, detail: e.to_string() })?;
        sections += 1;
        if kind == pem::SectionKind::Certificate {
            certificates.push(CertificateDer::from(der));
        }
    }
    if sections == 0 {
        return Err(TlsError::NotPem { part, detail: "no PEM section found".into() });
    }
    if certificates.is_empty() {
        return Err(TlsError::Missing { part, wanted: "certificate" });
    }
    Ok(certificates)
}

fn private_key(pem_bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    let part = TlsPart::ClientKey;
    let mut sections = 0usize;
    for item in <(pem::SectionKind, Vec<u8>)>::pem_slice_iter(pem_bytes) {
        let (kind, der) = item.map_err(|e| TlsError::NotPem { part, detail: e.to_string() })?;
        sections += 1;
        let key = match kind {
            pem::SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(der.into()),
            pem::SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(der.into()),
            pem::SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(der.into()),
            _ => continue,
        };
        return Ok(key);
    }
    if sections == 0 {
        return Err(TlsError::NotPem { part, detail: "no PEM section found".into() });
    }
    Err(TlsError::Missing { part, wanted: "private key" })
}

impl EtcdTls {
    /// Checks `ca_pem` (the CA that signed the servers' certificates), an optional client
    /// certificate and key (PEM), and builds the client configuration; `server_name` is the
    /// name to check the servers' certificates against when not the endpoints' host.
    ///
    /// # Errors
    /// [`TlsError`] naming the piece that is not PEM, lacks a certificate or key, or whose key
    /// does not match.
    pub fn from_pem(
        ca_pem: &[u8],
        client: Option<(&[u8], &[u8])>,
        server_name: Option<String>,
    ) -> Result<EtcdTls, TlsError> {
        let mut roots = RootCertStore::empty();
        for certificate in certificates(TlsPart::Ca, ca_pem)? {
            roots
                .add(certificate)
                .map_err(|e| TlsError::Unusable { part: TlsPart::Ca, detail: e.to_string() })?;
        }
        let provider = provider();
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Unusable { part: TlsPart::Ca, detail: e.to_string() })?;
        let named = match &server_name {
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|e| TlsError::Unusable {
                part: TlsPart::Ca,
                detail: format!("`{name}` is not a server name: {e}"),
            })?),
            None => None,
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Unusable { part: TlsPart::Ca, detail: e.to_string() })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NamedVerifier { inner: webpki, name: named }));
        let config = match client {
            Some((certificate, key)) => {
                let chain = certificates(TlsPart::ClientCertificate, certificate)?;
                let key = private_key(key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::KeyMismatch { detail: e.to_string() })?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(EtcdTls { config: Arc::new(config), client_certificate: client.is_some(), server_name })
    }

    /// The rustls configuration, for the HTTP client.
    pub(crate) fn config(&self) -> ClientConfig {
        (*self.config).clone()
    }
}

/// The CA's verifier, checking the certificate against `--etcd-server-name` when one is given
/// instead of the host the request went to. The signatures and the chain are checked as always.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: Option<ServerName<'static>>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = self.name.as_ref().unwrap_or(server_name);
        self.inner.verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_that_is_not_pem_or_lacks_a_certificate_is_named() {
        let not_pem = EtcdTls::from_pem(b"hello", None, None).unwrap_err();
        assert!(matches!(not_pem, TlsError::NotPem { part: TlsPart::Ca, .. }), "{not_pem}");
        assert_eq!(not_pem.to_string(), "the CA certificate is not PEM (no PEM section found)");
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let missing = EtcdTls::from_pem(key_only, None, None).unwrap_err();
        assert_eq!(missing.to_string(), "the CA certificate holds no certificate");
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let unusable = EtcdTls::from_pem(garbage, None, None).unwrap_err();
        assert!(matches!(unusable, TlsError::Unusable { part: TlsPart::Ca, .. }), "{unusable}");
    }
}
