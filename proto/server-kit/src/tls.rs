//! TLS for every gRPC server and every call between services (rustls).
//!
//! A server with `TLS_CERT` and `TLS_KEY` serves only TLS; with
//! `TLS_CLIENT_CA` too it verifies any client certificate against that CA,
//! and the service-to-service RPCs (the configuration feed, outcome
//! reports) then require one: mutual TLS. Without them the server speaks
//! plaintext, the local default, and warns when it listens beyond
//! loopback.
//!
//! Certificates are read at start: rotating them is a rolling restart
//! (every service drains on SIGTERM, and nodes and the stats service
//! reconnect to another replica).
//!
//! Clients call `https://` URLs with TLS, trusting the public web roots and
//! `UPSTREAM_CA`, and present `UPSTREAM_CLIENT_CERT` / `UPSTREAM_CLIENT_KEY`
//! where mutual TLS is on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// Server TLS flags (flattened into each server binary's).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerTlsFlags {
    /// PEM certificate chain the server presents; with TLS_KEY, the server
    /// serves TLS only.
    #[arg(long, env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of TLS_CERT.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA bundle client certificates are verified against (mutual
    /// TLS); service-to-service RPCs then require a client certificate.
    #[arg(long, env = "TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Client TLS flags for calls to other services.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpstreamTlsFlags {
    /// PEM CA bundle trusted for `https://` service URLs, besides the
    /// public web roots.
    #[arg(long, env = "UPSTREAM_CA")]
    pub upstream_ca: Option<PathBuf>,

    /// PEM client certificate presented to services with mutual TLS on.
    #[arg(long, env = "UPSTREAM_CLIENT_CERT", requires = "upstream_client_key")]
    pub upstream_client_cert: Option<PathBuf>,

    /// PEM private key of UPSTREAM_CLIENT_CERT.
    #[arg(long, env = "UPSTREAM_CLIENT_KEY", requires = "upstream_client_cert")]
    pub upstream_client_key: Option<PathBuf>,
}

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} from {path}: {source}")]
pub struct TlsFileError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError {
        what,
        path: path.to_owned(),
        source,
    })
}

/// How a server serves: its TLS configuration, if any.
#[derive(Debug, Clone, Default)]
pub struct ServerTls {
    config: Option<ServerTlsConfig>,
    mutual: bool,
}

impl ServerTls {
    /// Plaintext.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// TLS from the flags' files (plaintext when none is given).
    pub fn from_flags(flags: &ServerTlsFlags) -> Result<Self, TlsFileError> {
        let (Some(cert), Some(key)) = (&flags.tls_cert, &flags.tls_key) else {
            return Ok(Self::plaintext());
        };
        let identity = Identity::from_pem(
            read("the certificate (TLS_CERT)", cert)?,
            read("the private key (TLS_KEY)", key)?,
        );
        let mut config = ServerTlsConfig::new().identity(identity);
        let mutual = match &flags.tls_client_ca {
            Some(ca) => {
                let ca = read("the client CA (TLS_CLIENT_CA)", ca)?;
                // Verified whenever presented; the RPCs that need one
                // check for it (see `require_client_certificate`).
                config = config
                    .client_ca_root(Certificate::from_pem(ca))
                    .client_auth_optional(true);
                true
            }
            None => false,
        };
        Ok(Self {
            config: Some(config),
            mutual,
        })
    }

    /// The tonic configuration (`None`: plaintext).
    pub fn config(&self) -> Option<ServerTlsConfig> {
        self.config.clone()
    }

    /// Whether client certificates are verified (mutual TLS).
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// Warns when plaintext is served beyond loopback.
    pub fn warn_if_exposed(&self, listen: SocketAddr) {
        if self.config.is_none() && !listen.ip().is_loopback() {
            tracing::warn!(
                %listen,
                "serving plaintext gRPC beyond loopback: credentials and partner secrets cross the network in clear; set TLS_CERT and TLS_KEY"
            );
        }
    }
}

/// The identity of a client that presented a verified certificate: its
/// first DNS subject alternative name, else its common name. `None`
/// without a certificate (or on a plaintext server).
pub fn peer_identity<T>(request: &Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    let first = certs.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(first.as_ref()).ok()?;
    let from_san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
        });
    from_san.or_else(|| {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
    })
}

/// With mutual TLS on, the client's verified identity, or UNAUTHENTICATED
/// when it presented no certificate. `Ok(None)` when mutual TLS is off.
pub fn require_client_certificate<T>(
    tls: &ServerTls,
    request: &Request<T>,
) -> Result<Option<String>, Status> {
    if !tls.is_mutual() {
        return Ok(None);
    }
    match peer_identity(request) {
        Some(identity) => Ok(Some(identity)),
        None => Err(Status::unauthenticated(
            "mutual TLS is on: present a client certificate signed by the server's TLS_CLIENT_CA",
        )),
    }
}

/// How clients reach other services.
#[derive(Debug, Clone, Default)]
pub struct UpstreamTls {
    config: Option<ClientTlsConfig>,
}

impl UpstreamTls {
    /// From the flags' files.
    pub fn from_flags(flags: &UpstreamTlsFlags) -> Result<Self, TlsFileError> {
        let mut config = ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca) = &flags.upstream_ca {
            config = config.ca_certificate(Certificate::from_pem(read(
                "the upstream CA (UPSTREAM_CA)",
                ca,
            )?));
        }
        if let (Some(cert), Some(key)) = (&flags.upstream_client_cert, &flags.upstream_client_key) {
            config = config.identity(Identity::from_pem(
                read("the client certificate (UPSTREAM_CLIENT_CERT)", cert)?,
                read("the client key (UPSTREAM_CLIENT_KEY)", key)?,
            ));
        }
        Ok(Self {
            config: Some(config),
        })
    }

    /// The TLS configuration for `https://` URLs (`None`: web roots only).
    pub fn config(&self) -> ClientTlsConfig {
        self.config
            .clone()
            .unwrap_or_else(|| ClientTlsConfig::new().with_webpki_roots())
    }
}
