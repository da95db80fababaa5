//! [`EngineHttp`]: one HTTP client to the engine over an [`Endpoint`]'s transport (a unix socket,
//! plain HTTP, or TLS), shared by bollard — as its custom transport — and by the few requests
//! atq sends itself (`GET /tasks`, service logs), so that both always go the same way.
//!
//! TLS is rustls with the ring provider: the engine's `ca.pem` is the only root trusted, the
//! engine's certificate must name the host of `DOCKER_HOST`, and the client presents `cert.pem`
//! with `key.pem` when both exist. Each certificate file is read up to [`MAX_PEM_BYTES`].
//!
//! Connections are not pooled (as bollard does not pool either): a pooled connection is driven by
//! a task of the runtime that opened it, so a cluster shared across runtimes (a `Drop` cleaning up
//! on a runtime of its own, the Python bindings) would hang on it.

use std::io::Read as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::{BollardRequest, ClientVersion, Docker};
use futures_util::{Stream, StreamExt as _};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixConnector;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::endpoint::{Endpoint, TlsFiles, Transport};
use crate::error::{Error, Result};

/// How long one of atq's own requests may take, answer included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest JSON answer atq reads itself: 64 MiB (a `GET /tasks` of 10,000 replicas is ~25 MB).
pub(crate) const MAX_JSON_BYTES: usize = 64 * 1024 * 1024;

/// Largest certificate or key file read: 1 MiB (a chain of a few certificates is a few KiB).
pub(crate) const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// A request or response body, whatever made it.
pub(crate) type Body = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A response body, chunk by chunk.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, BollardError>> + Send>>;

/// The client for one endpoint (cheap to clone: the hyper clients are handles).
#[derive(Clone)]
pub(crate) struct EngineHttp {
    target: Arc<Target>,
}

/// The hyper client of the endpoint's transport, and where it points.
enum Target {
    Unix { client: Client<UnixConnector, Body>, socket: std::path::PathBuf },
    Http { client: Client<HttpConnector, Body>, authority: String },
    Https { client: Client<HttpsConnector<HttpConnector>, Body>, authority: String },
}

impl EngineHttp {
    /// A client for `endpoint`; for TLS, reads and checks the certificate files.
    ///
    /// # Errors
    /// [`Error::EngineAddress`] when a TLS file is missing, unreadable or not what it should be.
    pub(crate) fn new(endpoint: &Endpoint) -> Result<EngineHttp> {
        let builder = || {
            let mut builder = Client::builder(TokioExecutor::new());
            builder.pool_max_idle_per_host(0);
            builder
        };
        let target = match endpoint.transport() {
            Transport::Unix { socket } => {
                Target::Unix { client: builder().build(UnixConnector), socket: socket.clone() }
            }
            Transport::Http { authority } => {
                Target::Http { client: builder().build(HttpConnector::new()), authority: authority.clone() }
            }
            Transport::Https { authority, tls } => {
                let config = tls_config(tls).map_err(|(reason, fix)| Error::EngineAddress {
                    host: endpoint.host().to_owned(),
                    reason,
                    fix,
                })?;
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_only()
                    .enable_http1()
                    .wrap_connector(http);
                Target::Https { client: builder().build(connector), authority: authority.clone() }
            }
        };
        Ok(EngineHttp { target: Arc::new(target) })
    }

    /// The URI of `path_and_query` (which starts with `/`) on this endpoint.
    fn uri(&self, path_and_query: &str) -> std::result::Result<Uri, BollardError> {
        match &*self.target {
            Target::Unix { socket, .. } => Ok(hyperlocal::Uri::new(socket, path_and_query).into()),
            Target::Http { authority, .. } => format!("http://{authority}{path_and_query}").parse(),
            Target::Https { authority, .. } => format!("https://{authority}{path_and_query}").parse(),
        }
        .map_err(|err| BollardError::InvalidURIError { err })
    }

    /// Sends `request` to the engine: only its path and query are kept from its URI.
    pub(crate) async fn send(
        &self,
        mut request: Request<Body>,
    ) -> std::result::Result<Response<Incoming>, BollardError> {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
        *request.uri_mut() = self.uri(&path)?;
        match &*self.target {
            Target::Unix { client, .. } => client.request(request).await,
            Target::Http { client, .. } => client.request(request).await,
            Target::Https { client, .. } => client.request(request).await,
        }
        .map_err(|err| BollardError::HyperLegacyError { err })
    }

    /// A bollard client that sends every request through this one; `timeout` bounds each request
    /// until its answer's headers (bollard's own rule).
    pub(crate) fn docker(&self, timeout: Duration) -> std::result::Result<Docker, BollardError> {
        let http = self.clone();
        let transport = move |request: BollardRequest| {
            let http = http.clone();
            async move { http.send(request.map(|body| body.map_err(Into::into).boxed_unsync())).await }
        };
        let version = ClientVersion {
            major_version: bollard::API_DEFAULT_VERSION.major_version,
            minor_version: bollard::API_DEFAULT_VERSION.minor_version,
        };
        Docker::connect_with_custom_transport(transport, Some("http://engine"), timeout.as_secs().max(1), &version)
    }

    /// `GET path_and_query` (which starts with `/v1.xx/`), decoded from JSON; the whole exchange
    /// bounded by [`REQUEST_TIMEOUT`] and the answer by [`MAX_JSON_BYTES`].
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> std::result::Result<T, BollardError> {
        let exchange = async {
            let response = self.send(get(path_and_query)?).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_JSON_BYTES).collect().await.map_err(|e| {
                BollardError::IOError {
                    err: std::io::Error::other(format!(
                        "reading the answer to GET {path_and_query} (at most {MAX_JSON_BYTES} bytes): {e}"
                    )),
                }
            })?;
            Ok::<_, BollardError>((status, body.to_bytes()))
        };
        let (status, body) =
            tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.map_err(|_| BollardError::RequestTimeoutError)??;
        if !status.is_success() {
            return Err(server_error(status.as_u16(), &body));
        }
        serde_json::from_slice(&body).map_err(|err| BollardError::JsonSerdeError { err })
    }

    /// `GET path_and_query`, its body as a stream of chunks (for the engine's log streams).
    /// [`REQUEST_TIMEOUT`] bounds the wait for the answer's headers; the caller bounds the body.
    pub(crate) async fn get_stream(&self, path_and_query: &str) -> std::result::Result<ByteStream, BollardError> {
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.send(get(path_and_query)?))
            .await
            .map_err(|_| BollardError::RequestTimeoutError)??;
        let status = response.status();
        if !status.is_success() {
            let body = Limited::new(response.into_body(), 64 * 1024).collect().await.map(|b| b.to_bytes());
            return Err(server_error(status.as_u16(), &body.unwrap_or_default()));
        }
        let body = http_body_util::BodyStream::new(response.into_body());
        Ok(Box::pin(body.filter_map(|frame| async move {
            match frame {
                Ok(frame) => frame.into_data().ok().map(Ok),
                Err(err) => Some(Err(BollardError::HyperResponseError { err })),
            }
        })))
    }
}

/// A `GET` of `path_and_query` with an empty body.
fn get(path_and_query: &str) -> std::result::Result<Request<Body>, BollardError> {
    let mut request = Request::new(Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync());
    *request.uri_mut() = path_and_query.parse().map_err(|err| BollardError::InvalidURIError { err })?;
    Ok(request)
}

/// The engine's error answer (`{"message": …}`) as bollard's error.
fn server_error(status_code: u16, body: &[u8]) -> BollardError {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    let message = serde_json::from_slice::<Message>(body)
        .map(|m| m.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    BollardError::DockerResponseServerError { status_code, message }
}

/// A reason and a fix, for [`Error::EngineAddress`].
type Refusal = (String, String);

/// The rustls configuration for `files`: `ca.pem` the only root; `cert.pem` + `key.pem` when both
/// exist.
fn tls_config(files: &TlsFiles) -> std::result::Result<rustls::ClientConfig, Refusal> {
    let fix = || {
        "Put the engine's ca.pem (and the client's cert.pem and key.pem) in DOCKER_CERT_PATH, as the docker CLI \
         expects them"
            .to_owned()
    };
    let ca = read_pem(&files.ca).map_err(|e| (e, fix()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        let cert = cert.map_err(|e| (format!("{} is not a PEM certificate file: {e}", files.ca.display()), fix()))?;
        roots
            .add(cert)
            .map_err(|e| (format!("{} holds a certificate rustls refuses: {e}", files.ca.display()), fix()))?;
    }
    if roots.is_empty() {
        return Err((format!("{} holds no certificate", files.ca.display()), fix()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| (format!("TLS cannot be set up: {e}"), fix()))?
        .with_root_certificates(roots);
    let config = match (files.cert.exists(), files.key.exists()) {
        (false, false) => builder.with_no_client_auth(),
        (true, true) => {
            let pem = read_pem(&files.cert).map_err(|e| (e, fix()))?;
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| (format!("{} is not a PEM certificate file: {e}", files.cert.display()), fix()))?;
            if chain.is_empty() {
                return Err((format!("{} holds no certificate", files.cert.display()), fix()));
            }
            let key = PrivateKeyDer::from_pem_slice(&read_pem(&files.key).map_err(|e| (e, fix()))?)
                .map_err(|e| (format!("{} holds no private key: {e}", files.key.display()), fix()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                (
                    format!(
                        "{} and {} do not make a client certificate: {e}",
                        files.cert.display(),
                        files.key.display()
                    ),
                    fix(),
                )
            })?
        }
        (true, false) | (false, true) => {
            let (have, missing) =
                if files.cert.exists() { (&files.cert, &files.key) } else { (&files.key, &files.cert) };
            return Err((format!("{} is there but {} is not", have.display(), missing.display()), fix()));
        }
    };
    Ok(config)
}

/// The content of a PEM file, at most [`MAX_PEM_BYTES`].
fn read_pem(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut content = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut content)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if content.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("{} is larger than {MAX_PEM_BYTES} bytes, more than any certificate file", path.display()));
    }
    Ok(content)
}
