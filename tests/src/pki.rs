//! Certificates made for one test: a CA, a server certificate for
//! `localhost` and 127.0.0.1, and client certificates, written as PEM files
//! in a temporary directory (removed on drop).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A CA and the certificates it signed, as files.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The CA certificate (PEM): what servers and clients trust.
    pub ca: PathBuf,
    /// A server certificate for `localhost` and 127.0.0.1.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write PEM");
    path
}

impl TestPki {
    /// A fresh CA named `name` with its server certificate.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        let ca = write(dir.path(), "ca.pem", &issuer.pem());
        let (cert, key) = Self::sign(
            &issuer,
            &["localhost", "127.0.0.1"],
            "server",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let server_cert = write(dir.path(), "server.pem", &cert);
        let server_key = write(dir.path(), "server.key", &key);
        let pki = Self {
            dir,
            ca,
            server_cert,
            server_key,
        };
        // Keep the CA's key only as long as it is needed: client
        // certificates are issued now, by name.
        pki.issue_clients(&issuer);
        pki
    }

    fn sign(
        issuer: &CertifiedIssuer<'_, KeyPair>,
        names: &[&str],
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    fn issue_clients(&self, issuer: &CertifiedIssuer<'_, KeyPair>) {
        for name in CLIENTS {
            let (cert, key) =
                Self::sign(issuer, &[name], name, ExtendedKeyUsagePurpose::ClientAuth);
            write(self.dir.path(), &format!("{name}.pem"), &cert);
            write(self.dir.path(), &format!("{name}.key"), &key);
        }
    }

    /// The certificate and key files of client `name` (one of
    /// [`CLIENTS`]).
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        assert!(CLIENTS.contains(&name), "no client certificate for {name}");
        (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}.key")),
        )
    }

    /// Server flags: this server certificate, and `client_ca` for mutual
    /// TLS.
    pub fn server_flags(&self, client_ca: Option<&Path>) -> server_kit::tls::ServerTlsFlags {
        server_kit::tls::ServerTlsFlags {
            tls_cert: Some(self.server_cert.clone()),
            tls_key: Some(self.server_key.clone()),
            tls_client_ca: client_ca.map(Path::to_owned),
        }
    }
}

/// The client certificates every [`TestPki`] issues (DNS name and common
/// name alike).
pub const CLIENTS: [&str; 2] = ["node-a.nodes.internal", "stats.internal"];
