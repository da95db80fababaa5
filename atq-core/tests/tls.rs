//! TLS to a remote engine (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), offline: a fake engine on
//! 127.0.0.1 behind rustls, with the test certificates of `tests/tls/` (see its `make.sh`). Both
//! bollard's requests and atq's own `GET /tasks` must arrive over TLS with the client
//! certificate; an engine the CA did not sign, or that names another host, is refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atq_core::cluster::endpoint::{Endpoint, EndpointSettings, Transport};
use atq_core::cluster::{Cluster, SwarmCluster};
use atq_core::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "tls/server.rs"]
mod server;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls").join(name)
}

/// A `DOCKER_CERT_PATH` directory: `ca.pem` from `ca`, and the client pair unless `client` is false.
fn cert_dir(ca: &str, client: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(ca), dir.path().join("ca.pem")).unwrap();
    if client {
        std::fs::copy(fixture("client.pem"), dir.path().join("cert.pem")).unwrap();
        std::fs::copy(fixture("client-key.pem"), dir.path().join("key.pem")).unwrap();
    }
    dir
}

fn tls_settings(dir: &Path) -> EndpointSettings {
    EndpointSettings { tls_verify: true, cert_path: Some(dir.to_path_buf()), ..EndpointSettings::default() }
}

/// What the fake engine saw: each request's path, and whether its connection had a client certificate.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A fake swarm manager over TLS on `ip`, asking for a client certificate signed by the test CA.
async fn fake_engine(ip: &str) -> (String, Seen) {
    let acceptor = server::acceptor(&fixture(""));
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Seen::default();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let client_cert = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                    if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                record.lock().unwrap().push((path.clone(), client_cert));
                let (status, body) = answer(&path);
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nApi-Version: 1.41\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (format!("tcp://{address}"), seen)
}

/// The fake engine's answers: a swarm manager with one service of one running replica.
fn answer(path: &str) -> (&'static str, String) {
    let path = path.split('?').next().unwrap_or_default();
    let ok = "200 OK";
    match path.trim_start_matches("/v1.41") {
        "/_ping" => (ok, "OK".into()),
        "/version" => (ok, r#"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"}"#.into()),
        "/info" => (ok, r#"{"Swarm":{"LocalNodeState":"active","ControlAvailable":true,"NodeID":"node1"}}"#.into()),
        "/tasks" => (
            ok,
            r#"[{"ID":"t1","Slot":1,"DesiredState":"running","Status":{"State":"running"},
                 "NetworksAttachments":[{"Network":{"ID":"n","Spec":{"Name":"net"}},"Addresses":["10.0.9.7/24"]}]}]"#
                .into(),
        ),
        _ => ("404 Not Found", r#"{"message":"no such thing"}"#.into()),
    }
}

#[tokio::test]
async fn bollard_and_the_raw_client_both_reach_a_tls_engine_with_the_client_certificate() {
    let (host, seen) = fake_engine("127.0.0.1").await;
    let certs = cert_dir("ca.pem", true);
    let endpoint = Endpoint::parse(&host, &tls_settings(certs.path())).unwrap();
    assert!(matches!(endpoint.transport(), Transport::Https { .. }), "{endpoint:?}");
    let cluster = SwarmCluster::connect_to(&endpoint).await.unwrap();
    assert_eq!(cluster.api_version(), "1.41");
    // The raw GET /tasks, over the same TLS.
    let replicas = cluster.replicas("svc", "net").await.unwrap();
    assert_eq!(replicas.len(), 1);
    assert_eq!(replicas[0].address, Some("10.0.9.7".parse().unwrap()));

    let seen = seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|(p, _)| p.split('?').next().unwrap()).collect();
    for want in ["/_ping", "/version", "/info", "/tasks"] {
        assert!(paths.iter().any(|p| p.trim_start_matches("/v1.41") == want), "{want} not among {paths:?}");
    }
    assert!(
        seen.iter().all(|(_, client_cert)| *client_cert),
        "a request came without the client certificate: {seen:?}"
    );
}

/// Connecting must fail, as unreachable, within a moment, for the reason `words` name.
async fn refused(endpoint: &Endpoint, words: &str) {
    let started = std::time::Instant::now();
    match SwarmCluster::connect_to(endpoint).await {
        Err(e @ Error::EngineUnreachable { .. }) => {
            let message = format!("{e} {:?}", e);
            assert!(message.to_lowercase().contains(words), "expected '{words}' in: {message}");
        }
        other => panic!("expected EngineUnreachable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn an_engine_certificate_of_another_ca_is_refused() {
    let (host, seen) = fake_engine("127.0.0.1").await;
    let certs = cert_dir("other-ca.pem", true);
    refused(&Endpoint::parse(&host, &tls_settings(certs.path())).unwrap(), "certificate").await;
    assert!(seen.lock().unwrap().is_empty(), "a request got through: {:?}", seen.lock().unwrap());
}

#[tokio::test]
async fn an_engine_certificate_for_another_host_is_refused() {
    // The certificate names localhost and 127.0.0.1; 127.0.0.2 is this machine too, but not named.
    let (host, seen) = fake_engine("127.0.0.2").await;
    let certs = cert_dir("ca.pem", true);
    refused(&Endpoint::parse(&host, &tls_settings(certs.path())).unwrap(), "certificate").await;
    assert!(seen.lock().unwrap().is_empty());
    // By the name it holds, the same engine is fine.
    let (host, _) = fake_engine("127.0.0.1").await;
    let by_name = host.replace("127.0.0.1", "localhost");
    SwarmCluster::connect_to(&Endpoint::parse(&by_name, &tls_settings(certs.path())).unwrap()).await.unwrap();
}

#[tokio::test]
async fn without_a_client_certificate_an_engine_that_asks_for_one_refuses() {
    let (host, seen) = fake_engine("127.0.0.1").await;
    let certs = cert_dir("ca.pem", false);
    let endpoint = Endpoint::parse(&host, &tls_settings(certs.path())).unwrap();
    assert!(SwarmCluster::connect_to(&endpoint).await.is_err());
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn missing_or_broken_certificate_files_are_refused_naming_the_file() {
    let address_error = |e: Error| match e {
        e @ Error::EngineAddress { .. } => e.to_string(),
        other => panic!("expected EngineAddress, got {other:?}"),
    };
    let empty = tempfile::tempdir().unwrap();
    let endpoint = Endpoint::parse("tcp://127.0.0.1:1", &tls_settings(empty.path())).unwrap();
    let message = address_error(SwarmCluster::connect_to(&endpoint).await.unwrap_err());
    assert!(message.contains("ca.pem") && message.contains("DOCKER_CERT_PATH"), "{message}");

    let half = cert_dir("ca.pem", true);
    std::fs::remove_file(half.path().join("key.pem")).unwrap();
    let endpoint = Endpoint::parse("tcp://127.0.0.1:1", &tls_settings(half.path())).unwrap();
    let message = address_error(SwarmCluster::connect_to(&endpoint).await.unwrap_err());
    assert!(message.contains("key.pem") && message.contains("is not"), "{message}");

    let garbage = cert_dir("ca.pem", false);
    std::fs::write(garbage.path().join("ca.pem"), "not a certificate").unwrap();
    let endpoint = Endpoint::parse("tcp://127.0.0.1:1", &tls_settings(garbage.path())).unwrap();
    let message = address_error(SwarmCluster::connect_to(&endpoint).await.unwrap_err());
    assert!(message.contains("holds no certificate"), "{message}");

    let huge = cert_dir("ca.pem", false);
    std::fs::write(huge.path().join("ca.pem"), vec![b'a'; 2 * 1024 * 1024]).unwrap();
    let endpoint = Endpoint::parse("tcp://127.0.0.1:1", &tls_settings(huge.path())).unwrap();
    let message = address_error(SwarmCluster::connect_to(&endpoint).await.unwrap_err());
    assert!(message.contains("larger than"), "{message}");
}

/// 192.0.2.1 (TEST-NET-1) answers nothing: a connection attempt would take the whole timeout.
#[tokio::test]
async fn plain_tcp_to_another_machine_is_refused_before_any_connection() {
    let started = std::time::Instant::now();
    let err = SwarmCluster::connect_with("tcp://192.0.2.1:2375").await.unwrap_err();
    assert!(matches!(err, Error::EngineAddress { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(200), "took {:?}", started.elapsed());
}
