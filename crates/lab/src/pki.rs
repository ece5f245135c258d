//! A throw-away public key infrastructure for SSL tests, made with `ovs-pki`.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

use crate::error::Result;
use crate::ovsdb::SslConfig;
use crate::process::run;
use crate::util::{lab_tempdir, path_str};

/// A CA with a server and a client certificate, plus a second, unrelated CA (and a certificate
/// signed by it) for "wrong CA" tests. Files live in a temporary directory removed on drop.
///
/// Made with `ovs-pki init`, which creates two independent self-signed CAs, `switchca` (the
/// main one here) and `controllerca` (the unrelated one).
#[derive(Debug)]
pub struct Pki {
    /// Directory holding every file.
    pub dir: PathBuf,
    /// Certificate of the main CA.
    pub ca_cert: PathBuf,
    /// Server private key (signed by the main CA).
    pub server_key: PathBuf,
    /// Server certificate (signed by the main CA).
    pub server_cert: PathBuf,
    /// Client private key (signed by the main CA).
    pub client_key: PathBuf,
    /// Client certificate (signed by the main CA).
    pub client_cert: PathBuf,
    /// Certificate of the second, unrelated CA.
    pub other_ca_cert: PathBuf,
    /// Private key whose certificate is signed by the unrelated CA.
    pub other_key: PathBuf,
    /// Certificate signed by the unrelated CA.
    pub other_cert: PathBuf,
    _tmp: TempDir,
}

impl Pki {
    /// Creates both CAs and the server, client and "other" certificates (about a second).
    pub fn new() -> Result<Pki> {
        let tmp = lab_tempdir("pki")?;
        let dir = tmp.path().to_path_buf();
        let pki_dir = dir.join("pki");
        let log = dir.join("ovs-pki.log");
        let pki = |args: &[&str]| -> Result<String> {
            run(Command::new("ovs-pki")
                .current_dir(&dir)
                .arg(format!("--dir={}", path_str(&pki_dir)))
                .arg(format!("--log={}", path_str(&log)))
                .args(args))
        };
        pki(&["init"])?;
        pki(&["-b", "-u", "req+sign", "server", "switch"])?;
        pki(&["-b", "-u", "req+sign", "client", "switch"])?;
        pki(&["-b", "-u", "req+sign", "other", "controller"])?;
        Ok(Pki {
            ca_cert: pki_dir.join("switchca/cacert.pem"),
            server_key: dir.join("server-privkey.pem"),
            server_cert: dir.join("server-cert.pem"),
            client_key: dir.join("client-privkey.pem"),
            client_cert: dir.join("client-cert.pem"),
            other_ca_cert: pki_dir.join("controllerca/cacert.pem"),
            other_key: dir.join("other-privkey.pem"),
            other_cert: dir.join("other-cert.pem"),
            dir,
            _tmp: tmp,
        })
    }

    /// Server side: server key and certificate, trusting the main CA.
    pub fn server(&self) -> SslConfig {
        SslConfig {
            private_key: self.server_key.clone(),
            certificate: self.server_cert.clone(),
            ca_cert: self.ca_cert.clone(),
        }
    }

    /// A well-configured client: client key and certificate, trusting the main CA.
    pub fn client(&self) -> SslConfig {
        SslConfig {
            private_key: self.client_key.clone(),
            certificate: self.client_cert.clone(),
            ca_cert: self.ca_cert.clone(),
        }
    }

    /// A client whose certificate is fine but which trusts the unrelated CA, so it rejects the
    /// server's certificate.
    pub fn client_trusting_wrong_ca(&self) -> SslConfig {
        SslConfig {
            ca_cert: self.other_ca_cert.clone(),
            ..self.client()
        }
    }

    /// A client presenting a certificate signed by the unrelated CA, so the server rejects it.
    pub fn client_with_foreign_cert(&self) -> SslConfig {
        SslConfig {
            private_key: self.other_key.clone(),
            certificate: self.other_cert.clone(),
            ca_cert: self.ca_cert.clone(),
        }
    }
}
