//! Byte streams to OVSDB servers: TCP, Unix sockets and TLS.
//!
//! TLS follows Open vSwitch's model (`-p` private key, `-c` certificate, `-C` CA certificate): the peer's
//! certificate must chain to the configured CA; host names are not checked, because OVSDB deployments
//! address servers by IP and sign certificates per role, not per name.

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::{Error, Remote};

/// A connected, bidirectional byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// TLS files for `ssl:` remotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslConfig {
    /// PEM private key (`-p`).
    pub private_key: PathBuf,
    /// PEM certificate (`-c`).
    pub certificate: PathBuf,
    /// PEM CA certificate that the server's certificate must chain to (`-C`).
    pub ca_cert: PathBuf,
}

fn io_err(remote: &Remote, what: &'static str, source: std::io::Error) -> Error {
    Error::Io {
        remote: remote.to_string(),
        what,
        source,
    }
}

/// Opens a stream to `remote` within `timeout`.
pub async fn connect(
    remote: &Remote,
    ssl: Option<&SslConfig>,
    timeout: Duration,
) -> Result<Box<dyn Stream>, Error> {
    let fut = async {
        match remote {
            Remote::Unix(path) => {
                let s = UnixStream::connect(path)
                    .await
                    .map_err(|e| io_err(remote, "connect", e))?;
                Ok(Box::new(s) as Box<dyn Stream>)
            }
            Remote::Tcp(addr) => {
                let s = TcpStream::connect(addr)
                    .await
                    .map_err(|e| io_err(remote, "connect", e))?;
                let _ = s.set_nodelay(true);
                Ok(Box::new(s) as Box<dyn Stream>)
            }
            Remote::Ssl(addr) => {
                let cfg = ssl.ok_or_else(|| Error::Tls {
                    remote: remote.to_string(),
                    reason: "ssl: remote needs a private key, certificate and CA certificate"
                        .into(),
                })?;
                let connector = tls_connector(remote, cfg)?;
                let tcp = TcpStream::connect(addr)
                    .await
                    .map_err(|e| io_err(remote, "connect", e))?;
                let _ = tcp.set_nodelay(true);
                let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
                let ssl = connector
                    .configure()
                    .and_then(|mut c| {
                        c.set_verify_hostname(false);
                        c.set_use_server_name_indication(false);
                        c.into_ssl(host)
                    })
                    .map_err(|e| Error::Tls {
                        remote: remote.to_string(),
                        reason: e.to_string(),
                    })?;
                let mut stream =
                    tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| Error::Tls {
                        remote: remote.to_string(),
                        reason: e.to_string(),
                    })?;
                Pin::new(&mut stream)
                    .connect()
                    .await
                    .map_err(|e| Error::Tls {
                        remote: remote.to_string(),
                        reason: describe_handshake(&e, &stream, cfg),
                    })?;
                Ok(Box::new(stream) as Box<dyn Stream>)
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            remote: remote.to_string(),
            what: "connect".into(),
            secs: timeout.as_secs_f64(),
        }),
    }
}

fn describe_handshake(
    e: &openssl::ssl::Error,
    s: &tokio_openssl::SslStream<TcpStream>,
    cfg: &SslConfig,
) -> String {
    let verify = s.ssl().verify_result();
    if verify != openssl::x509::X509VerifyResult::OK {
        format!(
            "handshake failed: server certificate rejected: {} (is {} the CA that signed the server's certificate?)",
            verify.error_string(),
            cfg.ca_cert.display()
        )
    } else {
        format!("handshake failed: {e}")
    }
}

/// Describes a read or write error; a TLS alert about certificates says what it means. (With TLS 1.3
/// the server checks the client's certificate after the client's side of the handshake is done, so
/// its refusal arrives as an alert on the first read, not as a handshake error.)
pub(crate) fn describe_io_error(e: &std::io::Error) -> String {
    let alert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
        .and_then(openssl::ssl::Error::ssl_error)
        .and_then(|stack| {
            stack
                .errors()
                .iter()
                .filter_map(openssl::error::Error::reason)
                .find(|r| r.contains("alert"))
                .map(str::to_string)
        });
    match alert {
        Some(a) if a.contains("certificate") || a.contains("unknown ca") => format!(
            "the server rejected our client certificate (TLS: {a}); is it signed by a CA the server trusts?"
        ),
        Some(a) => format!("TLS: {a}"),
        None => e.to_string(),
    }
}

fn tls_connector(remote: &Remote, cfg: &SslConfig) -> Result<SslConnector, Error> {
    let tls = |what: &str, path: &PathBuf, e: openssl::error::ErrorStack| Error::Tls {
        remote: remote.to_string(),
        reason: format!("{what} {}: {e}", path.display()),
    };
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| Error::Tls {
        remote: remote.to_string(),
        reason: e.to_string(),
    })?;
    b.set_private_key_file(&cfg.private_key, SslFiletype::PEM)
        .map_err(|e| tls("cannot load private key", &cfg.private_key, e))?;
    b.set_certificate_chain_file(&cfg.certificate)
        .map_err(|e| tls("cannot load certificate", &cfg.certificate, e))?;
    b.set_ca_file(&cfg.ca_cert)
        .map_err(|e| tls("cannot load CA certificate", &cfg.ca_cert, e))?;
    b.check_private_key().map_err(|e| {
        tls(
            "private key does not match certificate",
            &cfg.certificate,
            e,
        )
    })?;
    b.set_verify(SslVerifyMode::PEER);
    Ok(b.build())
}
