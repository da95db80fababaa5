//! Where the Docker engine is, and over what atq talks to it: one decision for every backend.
//!
//! [`Endpoint::from_env`] reads the docker CLI's own variables, with its meanings:
//!
//! | `DOCKER_HOST` | transport |
//! |---|---|
//! | unset or empty | the local socket, [`DEFAULT_HOST`] |
//! | `unix:///path/docker.sock` | that socket |
//! | `tcp://host[:port]`, `http://…` | TLS when `DOCKER_TLS_VERIFY` (or `DOCKER_TLS`) is set to anything, else plain HTTP |
//! | `https://host[:port]` | TLS |
//! | `ssh://…`, anything else | refused, naming what to do |
//!
//! TLS is the docker CLI's: the certificates are `ca.pem` (the engine's CA, the only one
//! trusted: no system roots), and `cert.pem` + `key.pem` (the client's, when the engine asks for
//! one) in `DOCKER_CERT_PATH`, else `DOCKER_CONFIG`, else `~/.docker`; the engine's certificate
//! must name the host in `DOCKER_HOST`. atq always verifies the engine's certificate, also for
//! `DOCKER_TLS` (where the docker CLI would not). The port defaults to 2376 with TLS, 2375 without.
//!
//! Plain HTTP to an engine is root on that machine for anyone on the path, so a plain `tcp://`
//! engine is accepted only on this machine (`localhost`, `127.0.0.0/8`, `::1`), or when
//! `ATQ_ALLOW_PLAIN_TCP=1` says the network in between is private (a CI job's own `docker:dind`
//! service, say). Anything else is refused with [`Error::EngineAddress`], naming the two ways
//! out: TLS, or an ssh tunnel to the engine's socket.
//!
//! ```
//! use atq_core::cluster::endpoint::{Endpoint, EndpointSettings, Transport};
//! let settings = EndpointSettings::default();
//! let local = Endpoint::parse("tcp://127.0.0.1:2375", &settings).unwrap();
//! assert!(matches!(local.transport(), Transport::Http { authority } if authority == "127.0.0.1:2375"));
//! assert!(Endpoint::parse("tcp://10.0.0.5:2375", &settings).is_err()); // plain HTTP off this machine
//! let tls = EndpointSettings { tls_verify: true, cert_path: Some("/certs".into()), ..Default::default() };
//! let remote = Endpoint::parse("tcp://docker:2376", &tls).unwrap();
//! assert!(matches!(remote.transport(), Transport::Https { authority, .. } if authority == "docker:2376"));
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// The engine address when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The engine's port for plain HTTP when `DOCKER_HOST` names none.
pub const PLAIN_PORT: u16 = 2375;

/// The engine's port for TLS when `DOCKER_HOST` names none.
pub const TLS_PORT: u16 = 2376;

/// How long connecting waits for the first answer of an engine on this machine.
pub const LOCAL_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long connecting waits for the first answer of an engine on another machine (a TLS
/// handshake over a real network).
pub const REMOTE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The environment variable that allows plain HTTP to an engine on another machine.
pub const ALLOW_PLAIN_TCP: &str = "ATQ_ALLOW_PLAIN_TCP";

/// What decides the endpoint: the docker CLI's variables, and atq's own. [`from_env`](Self::from_env)
/// reads them; tests and embedders can fill them in directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct EndpointSettings {
    /// `DOCKER_HOST` (None or empty: [`DEFAULT_HOST`]).
    pub docker_host: Option<String>,
    /// `DOCKER_TLS_VERIFY` is set to anything (as the docker CLI reads it, even `0`): TLS, verified.
    pub tls_verify: bool,
    /// `DOCKER_TLS` is set to anything: TLS (verified all the same, see the module docs).
    pub tls: bool,
    /// `DOCKER_CERT_PATH`: the directory of `ca.pem`, `cert.pem`, `key.pem`.
    pub cert_path: Option<PathBuf>,
    /// `DOCKER_CONFIG`: where the certificates are when `DOCKER_CERT_PATH` is not set.
    pub config_dir: Option<PathBuf>,
    /// `HOME`: `~/.docker` is the last place looked for the certificates.
    pub home: Option<PathBuf>,
    /// `ATQ_ALLOW_PLAIN_TCP=1`: plain HTTP to an engine on another machine is accepted.
    pub allow_plain_tcp: bool,
}

impl EndpointSettings {
    /// The settings from this process's environment.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        EndpointSettings {
            docker_host: var("DOCKER_HOST").map(|v| v.to_string_lossy().into_owned()),
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
            tls: var("DOCKER_TLS").is_some(),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
            config_dir: var("DOCKER_CONFIG").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            allow_plain_tcp: var(ALLOW_PLAIN_TCP).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
        }
    }

    /// The directory holding `ca.pem`, `cert.pem` and `key.pem`.
    #[must_use]
    pub fn cert_dir(&self) -> PathBuf {
        self.cert_path
            .clone()
            .or_else(|| self.config_dir.clone())
            .or_else(|| self.home.as_ref().map(|h| h.join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"))
    }
}

/// How atq reaches the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// A unix socket on this machine.
    Unix {
        /// The socket's path.
        socket: PathBuf,
    },
    /// Plain HTTP (an engine on this machine, or one allowed by `ATQ_ALLOW_PLAIN_TCP`).
    Http {
        /// `host:port`.
        authority: String,
    },
    /// HTTPS, the engine's certificate verified against `ca.pem`.
    Https {
        /// `host:port`; the host is the name the engine's certificate must hold.
        authority: String,
        /// The certificate files.
        tls: TlsFiles,
    },
}

/// The certificate files of a TLS endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the engine's certificate (`ca.pem`): the only one trusted.
    pub ca: PathBuf,
    /// The client's certificate chain (`cert.pem`), sent when the engine asks for one.
    pub cert: PathBuf,
    /// The client's private key (`key.pem`).
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `cert.pem` and `key.pem` in `dir`.
    #[must_use]
    pub fn in_dir(dir: &std::path::Path) -> Self {
        TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") }
    }
}

/// A Docker engine's address and the transport to it, decided once (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The address as given (`DOCKER_HOST`, or the default), for messages.
    host: String,
    /// How to reach it.
    transport: Transport,
    /// Whether it is on this machine (a socket, or a loopback address).
    local: bool,
}

impl Endpoint {
    /// The endpoint this process's environment names (see the module docs).
    ///
    /// # Errors
    /// [`Error::EngineAddress`] for an address atq cannot or will not use.
    pub fn from_env() -> Result<Endpoint> {
        Self::resolve(&EndpointSettings::from_env())
    }

    /// The endpoint `settings` name: their `docker_host`, or [`DEFAULT_HOST`].
    ///
    /// # Errors
    /// As [`Endpoint::parse`].
    pub fn resolve(settings: &EndpointSettings) -> Result<Endpoint> {
        let host = settings.docker_host.as_deref().filter(|h| !h.is_empty()).unwrap_or(DEFAULT_HOST);
        Self::parse(host, settings)
    }

    /// The endpoint at `host` (a `DOCKER_HOST` value), with the TLS settings of `settings`.
    /// Nothing is read or connected here: certificate files are read when connecting.
    ///
    /// # Errors
    /// [`Error::EngineAddress`] when `host` is malformed, names a scheme atq does not speak, or
    /// is plain HTTP to another machine without `ATQ_ALLOW_PLAIN_TCP=1`.
    pub fn parse(host: &str, settings: &EndpointSettings) -> Result<Endpoint> {
        let refuse =
            |reason: String, fix: &str| Error::EngineAddress { host: host.to_owned(), reason, fix: fix.to_owned() };
        let Some((scheme, rest)) = host.split_once("://") else {
            return Err(refuse(
                "it has no scheme".into(),
                "Write it as unix:///path/to/docker.sock, tcp://HOST:PORT or https://HOST:PORT",
            ));
        };
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "unix" => {
                if !rest.starts_with('/') || rest.len() < 2 || rest.contains('\0') {
                    return Err(refuse(
                        "a unix socket needs an absolute path".into(),
                        "Write it as unix:///path/to/docker.sock",
                    ));
                }
                return Ok(Endpoint {
                    host: host.to_owned(),
                    transport: Transport::Unix { socket: PathBuf::from(rest) },
                    local: true,
                });
            }
            "tcp" | "http" => settings.tls_verify || settings.tls,
            "https" => true,
            "ssh" => {
                return Err(refuse(
                    "atq does not speak ssh to an engine".into(),
                    "Forward the engine's socket instead, e.g. `ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock USER@HOST` \
                     and DOCKER_HOST=unix:///tmp/docker.sock, or set up TLS on the engine (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH)",
                ))
            }
            other => {
                return Err(refuse(
                    format!("atq does not speak '{other}://'"),
                    "Use unix:///path/to/docker.sock, tcp://HOST:PORT (with DOCKER_TLS_VERIFY=1 for TLS) or https://HOST:PORT",
                ))
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) || authority.is_empty() {
            return Err(refuse(
                "only a host and a port may follow the scheme (no path, query or user)".into(),
                "Write it as tcp://HOST:PORT",
            ));
        }
        let (name, port) = split_host_port(authority).ok_or_else(|| {
            refuse("its host or port is malformed".into(), "Write it as tcp://HOST:PORT, an IPv6 host as [::1]")
        })?;
        let port = port.unwrap_or(if tls { TLS_PORT } else { PLAIN_PORT });
        let authority = if name.contains(':') { format!("[{name}]:{port}") } else { format!("{name}:{port}") };
        let local = is_loopback(name);
        let transport = if tls {
            Transport::Https { authority, tls: TlsFiles::in_dir(&settings.cert_dir()) }
        } else if local || settings.allow_plain_tcp {
            Transport::Http { authority }
        } else {
            return Err(refuse(
                format!(
                    "it is plain, unencrypted HTTP to another machine ('{name}'), which gives anyone on the way full control of that engine"
                ),
                "Use TLS (set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory of ca.pem, cert.pem and key.pem), \
                 or an ssh tunnel to the engine's socket (`ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock USER@HOST`, \
                 then DOCKER_HOST=unix:///tmp/docker.sock); on a private network you trust, ATQ_ALLOW_PLAIN_TCP=1 accepts it",
            ));
        };
        Ok(Endpoint { host: host.to_owned(), transport, local })
    }

    /// The address as given (`DOCKER_HOST`, or the default), for messages.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How atq reaches the engine.
    #[must_use]
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Whether the engine is on this machine (a unix socket or a loopback address).
    #[must_use]
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// How long connecting may wait for the engine's first answer: [`LOCAL_CONNECT_TIMEOUT`] on
    /// this machine, [`REMOTE_CONNECT_TIMEOUT`] for another one.
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        if self.local {
            LOCAL_CONNECT_TIMEOUT
        } else {
            REMOTE_CONNECT_TIMEOUT
        }
    }
}

/// `host[:port]` or `[v6]:port` into the host (brackets removed) and the port, if any.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        name.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (name, None),
            p => (name, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    let valid_name = !name.is_empty()
        && (name.parse::<IpAddr>().is_ok()
            || name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !valid_name {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&p| p > 0)?)
        }
        Some(_) => return None,
    };
    Some((name, port))
}

/// Whether `host` is this machine: `localhost` (or a name under it), or a loopback address.
/// Other names are not resolved: a name is another machine unless it says otherwise.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> EndpointSettings {
        EndpointSettings { home: Some("/home/u".into()), ..EndpointSettings::default() }
    }

    fn tls() -> EndpointSettings {
        EndpointSettings { tls_verify: true, cert_path: Some("/certs".into()), ..plain() }
    }

    fn transport(host: &str, settings: &EndpointSettings) -> Transport {
        Endpoint::parse(host, settings).unwrap_or_else(|e| panic!("{host}: {e}")).transport
    }

    fn refusal(host: &str, settings: &EndpointSettings) -> String {
        match Endpoint::parse(host, settings) {
            Err(e @ Error::EngineAddress { .. }) => e.to_string(),
            other => panic!("{host}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_default_and_unix_sockets() {
        let e = Endpoint::resolve(&plain()).unwrap();
        assert_eq!(
            (e.host(), e.transport()),
            (DEFAULT_HOST, &Transport::Unix { socket: "/var/run/docker.sock".into() })
        );
        let empty = EndpointSettings { docker_host: Some(String::new()), ..plain() };
        assert_eq!(Endpoint::resolve(&empty).unwrap().host(), DEFAULT_HOST);
        assert_eq!(transport("unix:///tmp/d.sock", &plain()), Transport::Unix { socket: "/tmp/d.sock".into() });
        assert!(Endpoint::parse("unix:///tmp/d.sock", &plain()).unwrap().is_local());
        assert!(refusal("unix://relative.sock", &plain()).contains("absolute path"));
    }

    #[test]
    fn plain_tcp_is_accepted_on_this_machine_only() {
        for host in ["tcp://127.0.0.1:2375", "tcp://localhost:2375", "http://127.1.2.3:2375", "tcp://[::1]:2375"] {
            let e = Endpoint::parse(host, &plain()).unwrap();
            assert!(matches!(e.transport(), Transport::Http { .. }) && e.is_local(), "{host}");
        }
        assert_eq!(transport("tcp://localhost", &plain()), Transport::Http { authority: "localhost:2375".into() });
        assert_eq!(transport("tcp://[::1]:1", &plain()), Transport::Http { authority: "[::1]:1".into() });
        for host in
            ["tcp://10.0.0.5:2375", "tcp://docker:2375", "http://engine.example.com", "tcp://[2001:db8::1]:2375"]
        {
            let message = refusal(host, &plain());
            assert!(message.contains("plain, unencrypted HTTP"), "{message}");
            assert!(message.contains("DOCKER_TLS_VERIFY=1") && message.contains("ssh -nNT -L"), "{message}");
            assert!(message.contains(ALLOW_PLAIN_TCP), "{message}");
        }
        // Not fooled by a name that only looks local.
        assert!(Endpoint::parse("tcp://127.0.0.1.example.com:2375", &plain()).is_err());
        assert!(Endpoint::parse("tcp://localhost.example.com:2375", &plain()).is_err());
    }

    #[test]
    fn plain_tcp_elsewhere_is_accepted_when_allowed() {
        let allowed = EndpointSettings { allow_plain_tcp: true, ..plain() };
        assert_eq!(transport("tcp://docker:2375", &allowed), Transport::Http { authority: "docker:2375".into() });
        assert!(!Endpoint::parse("tcp://docker:2375", &allowed).unwrap().is_local());
    }

    #[test]
    fn tls_when_asked_with_the_docker_cli_files_and_ports() {
        let files = TlsFiles::in_dir(std::path::Path::new("/certs"));
        assert_eq!(files.ca, PathBuf::from("/certs/ca.pem"));
        assert_eq!(
            transport("tcp://docker:2376", &tls()),
            Transport::Https { authority: "docker:2376".into(), tls: files.clone() }
        );
        assert_eq!(transport("tcp://docker", &tls()), Transport::Https { authority: "docker:2376".into(), tls: files });
        // https:// is TLS without DOCKER_TLS_VERIFY; DOCKER_TLS alone is TLS too.
        assert!(
            matches!(transport("https://10.1.2.3", &plain()), Transport::Https { authority, .. } if authority == "10.1.2.3:2376")
        );
        let tls_only = EndpointSettings { tls: true, ..plain() };
        assert!(matches!(transport("tcp://10.1.2.3:1234", &tls_only), Transport::Https { .. }));
    }

    #[test]
    fn certificates_are_looked_for_where_the_docker_cli_looks() {
        let home = plain();
        assert_eq!(home.cert_dir(), PathBuf::from("/home/u/.docker"));
        let config = EndpointSettings { config_dir: Some("/cfg".into()), ..plain() };
        assert_eq!(config.cert_dir(), PathBuf::from("/cfg"));
        let both = EndpointSettings { cert_path: Some("/certs".into()), ..config };
        assert_eq!(both.cert_dir(), PathBuf::from("/certs"));
    }

    #[test]
    fn unsupported_and_malformed_addresses_are_refused_naming_what_to_do() {
        let ssh = refusal("ssh://me@host", &plain());
        assert!(ssh.contains("does not speak ssh") && ssh.contains("DOCKER_HOST=unix:///tmp/docker.sock"), "{ssh}");
        assert!(refusal("npipe:////./pipe/docker_engine", &plain()).contains("'npipe://'"));
        assert!(refusal("127.0.0.1:2375", &plain()).contains("no scheme"));
        for host in [
            "tcp://",
            "tcp://:2375",
            "tcp://host:port",
            "tcp://host:0",
            "tcp://host:65536",
            "tcp://host:2375/path",
            "tcp://user@host:2375",
            "tcp://[::1",
            "tcp://[nothex]:1",
            "tcp://ho st:1",
            "tcp://host:2375?x=1",
        ] {
            let message = refusal(host, &tls());
            assert!(message.contains(host), "{message}");
        }
    }

    #[test]
    fn remote_engines_get_a_longer_connect_timeout() {
        assert_eq!(Endpoint::parse("unix:///s", &plain()).unwrap().connect_timeout(), Duration::from_millis(500));
        assert_eq!(Endpoint::parse("tcp://docker:2376", &tls()).unwrap().connect_timeout(), Duration::from_secs(5));
    }
}

/// Bound on each bollard request until its answer's headers (bollard's default).
pub(crate) const BOLLARD_TIMEOUT: Duration = Duration::from_secs(120);

/// An engine that answered: its clients, address, API version and info, read once when
/// connecting so that a backend (or [`select`](super::select), which picks one) needs no second
/// round trip.
#[derive(Clone)]
pub(crate) struct Connection {
    /// The bollard client, at the negotiated API version, sending through `raw`.
    pub docker: bollard::Docker,
    /// The client bollard sends through, for the few requests bollard cannot make or decode.
    pub raw: super::engine_http::EngineHttp,
    /// The address connected to, for messages.
    pub host: String,
    /// The negotiated API version ("1.41").
    pub api_version: String,
    /// `GET /info`, as read when connecting.
    pub info: bollard::models::SystemInfo,
}

/// Connects to `endpoint`: fails fast ([`Error::EngineUnreachable`] within its
/// [`connect_timeout`](Endpoint::connect_timeout)) when nothing answers, negotiates the API
/// version and reads the engine's info.
///
/// # Errors
/// [`Error::EngineUnreachable`] when nothing answers in time; [`Error::EngineAddress`] when the
/// transport cannot be set up (TLS files).
pub(crate) async fn connect(endpoint: &Endpoint) -> Result<Connection> {
    let host = endpoint.host().to_owned();
    let unreachable = |message: String| Error::EngineUnreachable { host: host.clone(), message };
    let raw = super::engine_http::EngineHttp::new(endpoint)?;
    let docker = raw.docker(BOLLARD_TIMEOUT).map_err(|e| unreachable(with_causes(&e)))?;
    let timeout = endpoint.connect_timeout();
    match tokio::time::timeout(timeout, docker.ping()).await {
        Err(_) => return Err(unreachable(format!("no answer within {timeout:?}"))),
        Ok(Err(e)) => return Err(unreachable(with_causes(&e))),
        Ok(Ok(_)) => {}
    }
    let docker = tokio::time::timeout(timeout * 4, docker.negotiate_version())
        .await
        .map_err(|_| unreachable("no answer to GET /version".to_string()))?
        .map_err(|e| unreachable(with_causes(&e)))?;
    let info = tokio::time::timeout(timeout * 4, docker.info())
        .await
        .map_err(|_| unreachable("no answer to GET /info".to_string()))?
        .map_err(|e| unreachable(format!("GET /info: {}", with_causes(&e))))?;
    let version = docker.client_version();
    Ok(Connection {
        host: host.clone(),
        api_version: format!("{}.{}", version.major_version, version.minor_version),
        info,
        docker,
        raw,
    })
}

/// Connects to the engine at `host` (`DOCKER_HOST`'s forms; TLS settings from the environment).
///
/// # Errors
/// As [`connect`], and [`Error::EngineAddress`] for an address atq will not use.
pub(crate) async fn connect_to_host(host: &str) -> Result<Connection> {
    connect(&Endpoint::parse(host, &EndpointSettings::from_env())?).await
}

/// Connects to the engine `DOCKER_HOST` names (or the local socket).
///
/// # Errors
/// As [`connect_to_host`].
pub(crate) async fn connect_from_env() -> Result<Connection> {
    connect(&Endpoint::from_env()?).await
}

/// Whether the engine described by `info` is a swarm manager (and so can run the swarm backend).
pub(crate) fn is_swarm_manager(info: &bollard::models::SystemInfo) -> bool {
    let swarm = info.swarm.as_ref();
    swarm.and_then(|s| s.local_node_state) == Some(bollard::models::LocalNodeState::ACTIVE)
        && swarm.and_then(|s| s.control_available) == Some(true)
}

/// The engine's swarm state in words ("inactive", "active, worker", "active, manager").
pub(crate) fn swarm_state(info: &bollard::models::SystemInfo) -> String {
    let swarm = info.swarm.clone().unwrap_or_default();
    let state = swarm.local_node_state.unwrap_or(bollard::models::LocalNodeState::INACTIVE);
    match (state, swarm.control_available == Some(true)) {
        (bollard::models::LocalNodeState::ACTIVE, true) => "active, manager".to_owned(),
        (bollard::models::LocalNodeState::ACTIVE, false) => "active, worker".to_owned(),
        (other, _) => other.to_string(),
    }
}

/// An error's message with its causes (`invalid peer certificate: UnknownIssuer`).
pub(crate) fn with_causes(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
