//! What an `https://` target is trusted by, built once per run into one rustls client
//! configuration that every connection shares: the machine's certificate store plus the roots
//! of `--cacert`, or, with `--insecure`, any certificate at all (the handshake's signatures are
//! still checked, so the connection is still TLS; only *whose* key it is goes unchecked).
//!
//! The roots come from `rustls-native-certs`: the machine's store (`/etc/ssl/certs`, or
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`) is where an operator puts the company CA their fleet's
//! certificates chain to, and curl and oha trust the same store; a compiled-in list
//! (`webpki-roots`) would ignore that CA and age with the binary. A machine without a store
//! still works with `--cacert`. The crypto provider is aws-lc-rs, the one reqwest already builds
//! into loadgen (building ring beside it would only add a second copy of the same job).
//! HTTP/1.1 only: ALPN offers `http/1.1`.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{self, CryptoProvider},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject as _},
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use crate::mcp::ErrorClass;

/// Largest `--cacert` file read (a bundle of every public root is ~250 KiB).
const MAX_CACERT_BYTES: u64 = 8 * 1024 * 1024;

/// The ALPN protocol offered: loadgen speaks HTTP/1.1 only.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// What the run file and the report say when `--insecure` is given.
pub const VERIFICATION_OFF: &str = "TLS verification off";

/// The certificates of a `--cacert` file, read and checked while the arguments are parsed.
#[derive(Debug, Clone)]
pub struct CaCerts {
    pub path: PathBuf,
    pub certs: Vec<CertificateDer<'static>>,
}

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is larger than {MAX_CACERT_BYTES} bytes: not a certificate file", path.display())]
    TooLarge { path: PathBuf },
    #[error("{} is not PEM ({source})", path.display())]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("certificate {index} of {} cannot be a trusted root: {source}", path.display())]
    BadRoot {
        path: PathBuf,
        index: usize,
        source: rustls::Error,
    },
    #[error("TLS set-up: {0}")]
    Config(#[from] rustls::Error),
}

impl CaCerts {
    /// Reads every certificate of a PEM file; one that is missing, unreadable or holds none is
    /// an error naming the file.
    pub fn read(path: &Path) -> Result<Self, TlsError> {
        let path = path.to_path_buf();
        let read = |source| TlsError::Read {
            path: path.clone(),
            source,
        };
        if std::fs::metadata(&path).map_err(read)?.len() > MAX_CACERT_BYTES {
            return Err(TlsError::TooLarge { path });
        }
        let pem = std::fs::read(&path).map_err(read)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                path: path.clone(),
                source,
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate { path });
        }
        Ok(Self { path, certs })
    }
}

/// The TLS side of every `https://` connection of a run: the shared client configuration.
#[derive(Debug)]
pub struct Tls {
    config: Arc<ClientConfig>,
    /// Whether a failed handshake has been logged yet (the first one is; later ones only count).
    failure_logged: AtomicBool,
}

impl Tls {
    /// The configuration `--cacert` and `--insecure` ask for (the machine's roots, plus
    /// `cacert`'s; or no verification).
    pub fn new(cacert: Option<&CaCerts>, insecure: bool) -> Result<Self, TlsError> {
        let provider = Arc::new(crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut config = if insecure {
            let verifier = Arc::new(AnyCertificate(provider));
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            // Unreadable entries of the machine's store are skipped, as curl does: one broken
            // file must not stop a run whose targets do not chain to it.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if let Some(ca) = cacert {
                for (index, cert) in ca.certs.iter().enumerate() {
                    roots
                        .add(cert.clone())
                        .map_err(|source| TlsError::BadRoot {
                            path: ca.path.clone(),
                            index: index + 1,
                            source,
                        })?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(Self {
            config: Arc::new(config),
            failure_logged: AtomicBool::new(false),
        })
    }

    /// Runs the TLS handshake over `tcp` with `name` (SNI and the name the certificate must
    /// carry; an IP address is checked against the certificate's IP addresses). A failure is a
    /// `connect` error; the first one of the run is logged with its cause.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        name: &ServerName<'static>,
    ) -> Result<TlsStream<TcpStream>, ErrorClass> {
        TlsConnector::from(self.config.clone())
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| {
                if !self.failure_logged.swap(true, Ordering::Relaxed) {
                    let certificate = e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                        .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
                    let hint = if certificate {
                        "; trust its issuer with --cacert FILE, or skip verification with \
                         --insecure"
                    } else {
                        ""
                    };
                    eprintln!(
                        "TLS handshake with {} failed: {e}{hint} (further TLS failures are \
                         counted as `connect` errors, not logged)",
                        name.to_str()
                    );
                }
                ErrorClass::Connect
            })
    }
}

/// What connections configured by `--cacert` and `--insecure` trust, in words: the run file
/// and the report say it.
pub fn describe_trust(cacert: Option<&CaCerts>, insecure: bool) -> String {
    match (insecure, cacert) {
        (true, _) => VERIFICATION_OFF.to_string(),
        (false, None) => "verified against this machine's roots".to_string(),
        (false, Some(ca)) => format!(
            "verified against this machine's roots and {} certificate(s) from {}",
            ca.certs.len(),
            ca.path.display()
        ),
    }
}

/// The name a server at `host` (a URL's host, brackets and all) must prove: a DNS name, or an
/// IP address (sent without SNI and checked against the certificate's IP addresses).
pub fn server_name(host: &str) -> Result<ServerName<'static>, ErrorClass> {
    ServerName::try_from(host.trim_matches(['[', ']']).to_string()).map_err(|_| ErrorClass::Connect)
}

/// `--insecure`: accepts whatever certificate the server shows, but still checks that the
/// server's handshake signatures are made by that certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use rcgen::{CertifiedKey, KeyPair};
    use rustls::{
        ServerConfig,
        pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
    };
    use tokio::{io::AsyncWriteExt as _, net::TcpListener};
    use tokio_rustls::TlsAcceptor;

    use super::*;

    /// A self-signed certificate for 127.0.0.1 and localhost (PEM, to trust as a root), and the
    /// server's rustls configuration that shows it.
    fn pki() -> (String, Arc<ServerConfig>) {
        let CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der())),
                )
                .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        (cert.pem(), Arc::new(config))
    }

    /// A TLS server for one handshake: gives the client's SNI and the ALPN protocol agreed.
    async fn one_handshake(
        config: Arc<ServerConfig>,
    ) -> (
        u16,
        tokio::task::JoinHandle<Option<(Option<String>, Option<Vec<u8>>)>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.ok()?;
            let mut tls = TlsAcceptor::from(config).accept(tcp).await.ok()?;
            let (_, conn) = tls.get_ref();
            let seen = (
                conn.server_name().map(str::to_string),
                conn.alpn_protocol().map(<[u8]>::to_vec),
            );
            let _ = tls.shutdown().await;
            Some(seen)
        });
        (port, served)
    }

    fn ca_file(pem: &str) -> (tempfile::NamedTempFile, CaCerts) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, pem.as_bytes()).unwrap();
        let certs = CaCerts::read(file.path()).unwrap();
        (file, certs)
    }

    async fn handshake(tls: &Tls, port: u16, host: &str) -> Result<(), ErrorClass> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tls.handshake(tcp, &server_name(host)?).await.map(|_| ())
    }

    #[tokio::test]
    async fn a_cacert_root_verifies_the_server_with_sni_and_http1_alpn() {
        let (ca_pem, server) = pki();
        let (_file, ca) = ca_file(&ca_pem);
        let tls = Tls::new(Some(&ca), false).unwrap();
        let trust = describe_trust(Some(&ca), false);
        assert!(trust.contains("and 1 certificate(s) from"), "{trust}");

        let (port, served) = one_handshake(server.clone()).await;
        handshake(&tls, port, "localhost").await.unwrap();
        let (sni, alpn) = served.await.unwrap().expect("handshake done");
        assert_eq!(sni.as_deref(), Some("localhost"));
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));

        // An IP address is checked against the certificate's IP names, and sends no SNI.
        let (port, served) = one_handshake(server).await;
        handshake(&tls, port, "127.0.0.1").await.unwrap();
        assert_eq!(served.await.unwrap().expect("handshake done").0, None);
    }

    #[tokio::test]
    async fn an_unknown_issuer_or_a_wrong_name_fails_as_connect() {
        let (ca_pem, server) = pki();
        let (port, served) = one_handshake(server.clone()).await;
        let machine_roots_only = Tls::new(None, false).unwrap();
        assert_eq!(
            handshake(&machine_roots_only, port, "localhost").await,
            Err(ErrorClass::Connect)
        );
        assert!(served.await.unwrap().is_none());

        let (_file, ca) = ca_file(&ca_pem);
        let tls = Tls::new(Some(&ca), false).unwrap();
        let (port, _served) = one_handshake(server).await;
        assert_eq!(
            handshake(&tls, port, "other.example").await,
            Err(ErrorClass::Connect)
        );
    }

    #[tokio::test]
    async fn insecure_accepts_any_certificate_and_says_so() {
        let (_, server) = pki();
        let tls = Tls::new(None, true).unwrap();
        assert_eq!(describe_trust(None, true), VERIFICATION_OFF);
        let (port, served) = one_handshake(server).await;
        handshake(&tls, port, "other.example").await.unwrap();
        assert!(served.await.unwrap().is_some());
    }

    #[test]
    fn a_cacert_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = CaCerts::read(&missing).unwrap_err().to_string();
        assert!(
            err.contains("cannot read") && err.contains("missing.pem"),
            "{err}"
        );

        let key_only = dir.path().join("key.pem");
        std::fs::write(&key_only, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let err = CaCerts::read(&key_only).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");

        let (ca_pem, _) = pki();
        let (other_pem, _) = pki();
        let two = dir.path().join("two.pem");
        std::fs::write(&two, format!("{ca_pem}{other_pem}")).unwrap();
        assert_eq!(CaCerts::read(&two).unwrap().certs.len(), 2);
    }
}
