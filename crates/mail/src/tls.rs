//! TLS for `imaps://` and `pop3s://` mailboxes (implicit TLS: the handshake comes first, then
//! IMAP or POP3 as usual), and the connection every mailbox session runs over.
//!
//! rustls with the *ring* provider (the one sqlx already uses for PostgreSQL). The server's
//! certificate is always verified — against the public roots of `webpki-roots` plus, when
//! configured, the CA certificates of a PEM file (`mail_tls_ca_file`: a company CA, a test CA)
//! — and must name the mailbox's host (a DNS name or an IP address). There is no switch to turn
//! verification off.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// Which servers TLS mailbox connections trust. Cheap to clone.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<ClientConfig>,
    /// The certificates that came from the CA file (none without one), kept for TLS clients
    /// that cannot take `config` and build their own (lettre's SMTP transport).
    extra_certificates: Arc<[CertificateDer<'static>]>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("extra_roots", &self.extra_certificates.len())
            .finish_non_exhaustive()
    }
}

impl Default for TlsSettings {
    /// The public roots only.
    fn default() -> Self {
        Self::public_roots()
    }
}

impl TlsSettings {
    /// Trusts the public certificate authorities (Mozilla's list, from `webpki-roots`).
    pub fn public_roots() -> Self {
        Self::with_roots(public_root_store(), Vec::new())
    }

    /// Trusts the public roots and, when `ca_file` is given, every certificate in that PEM
    /// file. A file that cannot be read, is not PEM, holds no certificate or a certificate
    /// that cannot serve as a trust anchor is an error.
    pub fn load(ca_file: Option<&Path>) -> Result<Self, CaFileError> {
        match ca_file {
            None => Ok(Self::public_roots()),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| CaFileError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::with_extra_pem(&pem, path)
            }
        }
    }

    /// The public roots plus the certificates of `pem` (read from `path`, named in errors).
    pub fn with_extra_pem(pem: &[u8], path: &Path) -> Result<Self, CaFileError> {
        let mut roots = public_root_store();
        let mut added = Vec::new();
        for (index, certificate) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let certificate = certificate.map_err(|error| CaFileError::NotPem {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
            roots
                .add(certificate.clone())
                .map_err(|error| CaFileError::BadCertificate {
                    path: path.to_owned(),
                    number: index + 1,
                    reason: error.to_string(),
                })?;
            added.push(certificate);
        }
        if added.is_empty() {
            return Err(CaFileError::NoCertificate {
                path: path.to_owned(),
            });
        }
        Ok(Self::with_roots(roots, added))
    }

    /// How many certificates the CA file added to the public roots.
    pub fn extra_roots(&self) -> usize {
        self.extra_certificates.len()
    }

    /// The certificates the CA file added (DER), for TLS clients that build their own
    /// configuration from trust anchors (the SMTP transport): with the public roots of
    /// `webpki-roots` they trust exactly what this configuration trusts.
    pub fn extra_root_certificates(&self) -> &[CertificateDer<'static>] {
        &self.extra_certificates
    }

    /// The rustls client configuration itself, for other TLS clients (webhook deliveries).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    fn with_roots(roots: RootCertStore, extra_certificates: Vec<CertificateDer<'static>>) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            config: Arc::new(config),
            extra_certificates: extra_certificates.into(),
        }
    }
}

fn public_root_store() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// Why the CA file (`mail_tls_ca_file`) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    /// It cannot be read.
    #[error("cannot read the CA file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// It is not PEM (a `BEGIN CERTIFICATE` block is damaged).
    #[error("the CA file {} is not valid PEM: {reason}", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// It holds no `BEGIN CERTIFICATE` block.
    #[error(
        "the CA file {} holds no certificate (PEM \"-----BEGIN CERTIFICATE-----\" blocks)",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate in it cannot be parsed as a trust anchor.
    #[error("certificate {number} in the CA file {} cannot be used: {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Its position in the file, from 1.
        number: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A stream a mailbox session runs over: plain TCP or TLS over TCP.
pub trait MailTransport: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> MailTransport for T {}

/// An open connection to a mail server, plain or TLS.
pub type MailStream = Box<dyn MailTransport>;

/// Why [`open`] failed.
#[derive(Debug)]
pub enum OpenError {
    /// The TCP connection could not be made (refused, unreachable, name not resolved, or not
    /// within the timeout).
    Connect(io::Error),
    /// The TLS handshake failed: the certificate is not trusted or does not name the host, the
    /// server does not speak TLS there, or it did not finish within the timeout. Errors of
    /// kind [`io::ErrorKind::InvalidData`] are the server's certificate or TLS itself (not
    /// transient); the others are the network's.
    Tls(io::Error),
}

/// Connects to `addr` (`host:port`) and, with `tls`, completes a TLS handshake for `host` (the
/// name the certificate must carry: a DNS name or an IP address). The connection and the
/// handshake are each bounded by `timeout`.
pub async fn open(
    addr: &str,
    host: &str,
    tls: Option<&TlsSettings>,
    timeout: Duration,
) -> Result<MailStream, OpenError> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(OpenError::Connect(error)),
        Err(_) => {
            return Err(OpenError::Connect(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            )));
        }
    };
    // Commands are small and each waits for its answer: do not let Nagle delay them.
    tcp.set_nodelay(true).ok();
    let Some(tls) = tls else {
        return Ok(Box::new(tcp));
    };
    let name = server_name(host).map_err(OpenError::Tls)?;
    let connector = TlsConnector::from(Arc::clone(&tls.config));
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(error)) => Err(OpenError::Tls(explain(error))),
        Err(_) => Err(OpenError::Tls(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no TLS handshake within {timeout:?}"),
        ))),
    }
}

/// The name a server's certificate must carry: `host` as a DNS name or an IP address (IPv6
/// without brackets).
fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} cannot be checked against a certificate: {error}"),
        )
    })
}

/// A handshake error, with a hint where the certificate was refused.
fn explain(error: io::Error) -> io::Error {
    let certificate = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|inner| matches!(inner, rustls::Error::InvalidCertificate(_)));
    if certificate {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{error} (the server's certificate is not trusted for this host; a certificate \
                 from a private CA needs that CA in mail_tls_ca_file)"
            ),
        )
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway self-signed CA (EC P-256, `openssl req -x509`), only ever parsed here.
    const TEST_CA: &str = include_str!("../tests/data/test-ca.pem");

    fn path() -> &'static Path {
        Path::new("/etc/helpline/ca.pem")
    }

    #[test]
    fn public_roots_are_trusted_without_a_file() {
        let settings = TlsSettings::load(None).expect("public roots");
        assert_eq!(settings.extra_roots(), 0);
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
    }

    #[test]
    fn a_pem_file_adds_its_certificates() {
        let settings = TlsSettings::with_extra_pem(TEST_CA.as_bytes(), path()).expect("CA");
        assert_eq!(settings.extra_roots(), 1);
        let twice = format!("{TEST_CA}\n{TEST_CA}");
        let settings = TlsSettings::with_extra_pem(twice.as_bytes(), path()).expect("CA");
        assert_eq!(settings.extra_roots(), 2);
    }

    #[test]
    fn a_missing_file_is_a_read_error_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing.pem");
        let error = TlsSettings::load(Some(&missing)).expect_err("missing");
        assert!(matches!(error, CaFileError::Read { .. }), "{error:?}");
        assert!(error.to_string().contains("missing.pem"), "{error}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        for text in [
            "",
            "not a certificate\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let error = TlsSettings::with_extra_pem(text.as_bytes(), path()).expect_err(text);
            assert!(
                matches!(error, CaFileError::NoCertificate { .. }),
                "{text:?}: {error:?}"
            );
            assert!(
                error.to_string().contains("/etc/helpline/ca.pem"),
                "{error}"
            );
        }
    }

    #[test]
    fn damaged_pem_is_refused() {
        let damaged = "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n";
        let error = TlsSettings::with_extra_pem(damaged.as_bytes(), path()).expect_err("damaged");
        assert!(matches!(error, CaFileError::NotPem { .. }), "{error:?}");
        let unterminated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        let error =
            TlsSettings::with_extra_pem(unterminated.as_bytes(), path()).expect_err("unterminated");
        assert!(matches!(error, CaFileError::NotPem { .. }), "{error:?}");
    }

    #[test]
    fn a_certificate_that_is_not_der_is_refused() {
        // Valid base64, but not a certificate.
        let junk = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let text = format!("{TEST_CA}{junk}");
        let error = TlsSettings::with_extra_pem(text.as_bytes(), path()).expect_err("junk");
        match error {
            CaFileError::BadCertificate { number, .. } => assert_eq!(number, 2),
            other => panic!("expected BadCertificate, got {other:?}"),
        }
    }

    #[test]
    fn server_names_are_dns_names_or_ip_addresses() {
        assert!(matches!(
            server_name("mail.example.com"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(server_name("bad name!").is_err());
    }

    /// A one-connection TLS server on loopback with the test server certificate (for
    /// `127.0.0.1` and `localhost`, signed by the test CA) that sends a POP3 greeting.
    async fn greeting_server() -> String {
        use tokio::io::AsyncWriteExt;
        use tokio_rustls::rustls::ServerConfig;
        use tokio_rustls::rustls::pki_types::PrivateKeyDer;
        let chain = CertificateDer::pem_slice_iter(include_bytes!("../tests/data/test-server.pem"))
            .collect::<Result<Vec<_>, _>>()
            .expect("server certificate");
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("../tests/data/test-server.key"))
            .expect("server key");
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"+OK test server ready\r\n").await;
                        let _ = tls.flush().await;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_server_signed_by_the_ca_file_is_trusted_by_ip_address_and_name() {
        let addr = greeting_server().await;
        let port = addr.rsplit_once(':').expect("port").1;
        let tls = TlsSettings::with_extra_pem(TEST_CA.as_bytes(), path()).expect("CA");
        let timeout = Duration::from_secs(5);
        for (connect, host) in [
            (addr.clone(), "127.0.0.1"),
            (format!("localhost:{port}"), "localhost"),
        ] {
            let stream = match open(&connect, host, Some(&tls), timeout).await {
                Ok(stream) => stream,
                Err(error) => panic!("{host}: {error:?}"),
            };
            let pop3 = crate::pop3::Pop3::start(stream, timeout)
                .await
                .expect("greeting over TLS");
            assert_eq!(pop3.greeting(), "test server ready");
        }
    }

    #[tokio::test]
    async fn a_certificate_from_an_unknown_ca_or_for_another_host_is_refused() {
        let addr = greeting_server().await;
        let timeout = Duration::from_secs(5);
        let public = TlsSettings::public_roots();
        match open(&addr, "127.0.0.1", Some(&public), timeout).await {
            Err(OpenError::Tls(error)) => {
                assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
                let text = error.to_string();
                assert!(text.contains("certificate"), "{text}");
                assert!(text.contains("mail_tls_ca_file"), "{text}");
            }
            Err(other) => panic!("expected a TLS error, got {other:?}"),
            Ok(_) => panic!("an unknown CA was trusted"),
        }
        let tls = TlsSettings::with_extra_pem(TEST_CA.as_bytes(), path()).expect("CA");
        match open(&addr, "127.0.0.2", Some(&tls), timeout).await {
            Err(OpenError::Tls(error)) => {
                assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
            }
            Err(other) => panic!("expected a TLS error, got {other:?}"),
            Ok(_) => panic!("a certificate for another address was accepted"),
        }
    }

    #[tokio::test]
    async fn tls_to_a_closed_port_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let result = open(
            &format!("127.0.0.1:{port}"),
            "127.0.0.1",
            Some(&TlsSettings::public_roots()),
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(result, Err(OpenError::Connect(_))));
    }
}
