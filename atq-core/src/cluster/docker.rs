//! [`DockerCluster`]: the Docker engine, through bollard.

use async_trait::async_trait;

use super::*;

/// A [`Cluster`] over a real Docker engine.
#[derive(Debug, Default, Clone)]
pub struct DockerCluster {}

impl DockerCluster {
    /// Placeholder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects to the engine at `DOCKER_HOST` (or the default socket) and checks that it is a
    /// swarm manager. Placeholder until the docker branch lands.
    pub async fn connect() -> Result<Self> {
        todo!()
    }
}

#[async_trait]
impl Cluster for DockerCluster {
    async fn info(&self) -> Result<EngineInfo> {
        todo!()
    }
    async fn create_network(&self, _spec: &NetworkSpec) -> Result<String> {
        todo!()
    }
    async fn remove_network(&self, _name: &str) -> Result<()> {
        todo!()
    }
    async fn create_service(&self, _spec: &ServiceSpec) -> Result<String> {
        todo!()
    }
    async fn remove_service(&self, _name: &str) -> Result<()> {
        todo!()
    }
    async fn replicas(&self, _service: &str, _network: &str) -> Result<Vec<Replica>> {
        todo!()
    }
    async fn logs(&self, _service: &str, _follow: bool) -> Result<LogStream> {
        todo!()
    }
    async fn create_config(&self, _spec: &ConfigSpec) -> Result<String> {
        todo!()
    }
    async fn remove_config(&self, _name: &str) -> Result<()> {
        todo!()
    }
    async fn list_resources(&self, _kind: ResourceKind, _selector: &LabelSelector) -> Result<Vec<Resource>> {
        todo!()
    }
}
