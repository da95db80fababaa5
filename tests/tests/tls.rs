//! The real engine over TLS: a TLS proxy on 127.0.0.1 (the test certificates of
//! `atq-core/tests/tls/`, a client certificate required) in front of the engine's socket. A
//! `SwarmCluster` connected through it deploys, reads replicas and logs, copies files and removes,
//! every request over TLS — bollard's and atq's own `GET /tasks` and log streams alike.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atq_core::cluster::endpoint::{Endpoint, EndpointSettings, Transport};
use atq_core::cluster::{Backend, Cluster, NetworkSpec, ServiceSpec};
use atq_core::SwarmCluster;
use atq_tests::*;

#[path = "../../atq-core/tests/tls/server.rs"]
mod server;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../atq-core/tests/tls").join(name)
}

/// A TLS proxy to the engine's unix socket; returns its `tcp://` address and a count of the
/// connections it accepted with a client certificate.
async fn tls_proxy(socket: PathBuf) -> (String, Arc<AtomicUsize>) {
    let acceptor = server::acceptor(&fixture(""));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, socket, count) = (acceptor.clone(), socket.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                if tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                let Ok(mut engine) = tokio::net::UnixStream::connect(&socket).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut engine).await;
            });
        }
    });
    (format!("tcp://localhost:{}", address.port()), connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_cluster_over_tls_deploys_reads_and_removes() {
    ensure_images();
    let Transport::Unix { socket } = Endpoint::from_env().unwrap().transport().clone() else {
        panic!("this test proxies the engine's unix socket: DOCKER_HOST must be a unix:// socket or unset");
    };
    let (host, connections) = tls_proxy(socket).await;
    let certs = tempfile::tempdir().unwrap();
    for (from, to) in [("ca.pem", "ca.pem"), ("client.pem", "cert.pem"), ("client-key.pem", "key.pem")] {
        std::fs::copy(fixture(from), certs.path().join(to)).unwrap();
    }
    let settings = EndpointSettings {
        tls_verify: true,
        cert_path: Some(certs.path().to_path_buf()),
        ..EndpointSettings::default()
    };
    let endpoint = Endpoint::parse(&host, &settings).unwrap();
    assert!(matches!(endpoint.transport(), Transport::Https { .. }));
    let tls = SwarmCluster::connect_to(&endpoint).await.unwrap();
    let info = tls.info().await.unwrap();
    assert_eq!(info.backend, Backend::Swarm);
    assert!(info.nodes_ready >= 1, "{info:?}");

    // The scope's own (socket) client cleans up whatever the TLS one leaves.
    let scope = Scope::new(Backend::Swarm, "hardening-tls").await;
    let net = unique("hardening-tls");
    let spec = NetworkSpec { name: net.clone(), labels: scope.labels(), attachable: true, capacity: 4 };
    tls.create_network(&spec).await.unwrap();
    let service = ServiceSpec {
        name: unique("hardening-tls"),
        image: BUSYBOX.to_string(),
        replicas: 1,
        command: Some(vec!["sh".into(), "-c".into()]),
        args: vec!["mkdir -p /out && echo over-tls > /out/a.txt && echo hello over tls".into()],
        networks: vec![net.clone()],
        labels: scope.labels(),
        container_labels: scope.labels(),
        ..Default::default()
    };
    tls.create_service(&service).await.unwrap();
    let replicas = wait_replicas(&tls, &service.name, &net, Duration::from_secs(30), all_terminal(1)).await;
    assert_eq!(replicas[0].exit_code, Some(0), "{replicas:#?}");
    assert!(replicas[0].address.is_some(), "the raw GET /tasks over TLS gives addresses: {replicas:#?}");
    let lines = logs_until(&tls, &service.name, Duration::from_secs(10), |l| !l.is_empty()).await;
    assert_eq!(lines[0].text, "hello over tls");
    let container = replicas[0].container_id.clone().unwrap();
    let chunks: Vec<Vec<u8>> = {
        use futures_util::StreamExt;
        tls.copy_from_replica(&container, "/out/a.txt").await.unwrap().map(|c| c.unwrap()).collect().await
    };
    let archive = chunks.concat();
    let mut tar = tar::Archive::new(archive.as_slice());
    let mut entry = tar.entries().unwrap().next().unwrap().unwrap();
    let mut content = String::new();
    std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
    assert_eq!(content, "over-tls\n");
    tls.remove_service(&service.name).await.unwrap();
    tls.remove_network(&net).await.unwrap();
    assert!(connections.load(Ordering::SeqCst) >= 8, "{} TLS connections", connections.load(Ordering::SeqCst));
    scope.assert_nothing_left().await;
}
