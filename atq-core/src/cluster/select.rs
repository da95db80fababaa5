//! Which backend drives the engine: swarm on a swarm manager, plain Docker otherwise, unless
//! told (`ATQ_ENGINE=swarm|docker`, the CLI's `--engine`, Python's `DockerCluster(engine=…)`).
//!
//! ```no_run
//! use atq_core::cluster::select::{connect, EngineChoice};
//! use atq_core::Director;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), atq_core::Error> {
//! let connected = connect(EngineChoice::from_env()?, None).await?;
//! println!("{} backend: {}", connected.backend, connected.reason);
//! let director = Director::from_arc(connected.cluster);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use super::endpoint::{self, is_swarm_manager, swarm_state};
use super::{Backend, Cluster, DockerCluster, SwarmCluster};
use crate::error::{Error, Result};

/// The environment variable that picks the backend: `swarm` or `docker` (unset or empty: auto).
pub const ENGINE_ENV: &str = "ATQ_ENGINE";

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum EngineChoice {
    /// Swarm when the engine is a swarm manager, plain Docker otherwise.
    #[default]
    Auto,
    /// The swarm backend; the engine must be a swarm manager.
    Swarm,
    /// The plain Docker backend, also on a swarm manager.
    Docker,
}

impl EngineChoice {
    /// The names the setting takes.
    pub const NAMES: [&'static str; 3] = ["auto", "swarm", "docker"];

    /// `ATQ_ENGINE`: unset or empty is [`Auto`](Self::Auto).
    ///
    /// # Errors
    /// [`Error::Setting`] when it holds anything but `swarm`, `docker` or `auto`.
    pub fn from_env() -> Result<EngineChoice> {
        match std::env::var(ENGINE_ENV) {
            Ok(value) if !value.is_empty() => value.parse(),
            _ => Ok(EngineChoice::Auto),
        }
    }

    /// Its name (`auto`, `swarm`, `docker`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EngineChoice::Auto => "auto",
            EngineChoice::Swarm => "swarm",
            EngineChoice::Docker => "docker",
        }
    }
}

impl std::fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EngineChoice {
    type Err = Error;

    /// Exactly `swarm`, `docker` or `auto`.
    fn from_str(s: &str) -> Result<EngineChoice> {
        match s {
            "auto" => Ok(EngineChoice::Auto),
            "swarm" => Ok(EngineChoice::Swarm),
            "docker" => Ok(EngineChoice::Docker),
            other => Err(Error::Setting {
                name: ENGINE_ENV,
                value: other.to_owned(),
                expected: "`swarm` (Docker Swarm), `docker` (a plain engine), or unset to choose by the engine".into(),
            }),
        }
    }
}

/// A connected backend, and why it was chosen.
#[derive(Clone)]
pub struct Connected {
    /// The cluster, ready for a [`Director`](crate::Director).
    pub cluster: Arc<dyn Cluster>,
    /// Which backend it is.
    pub backend: Backend,
    /// Why this one, in a user's words ("the engine is a swarm manager", "ATQ_ENGINE=docker").
    pub reason: String,
    /// The engine's address.
    pub host: String,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("backend", &self.backend)
            .field("reason", &self.reason)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Connects to the engine at `host` (None: `DOCKER_HOST`, or the default socket) and returns the
/// backend `choice` asks for. The engine is asked once: [`EngineChoice::Auto`] reads its swarm
/// state from the same answer the backend starts from.
///
/// # Errors
/// [`Error::EngineUnreachable`] when nothing answers; [`Error::EngineUnsuitable`] for
/// [`EngineChoice::Swarm`] on an engine that is not a swarm manager.
pub async fn connect(choice: EngineChoice, host: Option<&str>) -> Result<Connected> {
    let connection = match host {
        Some(host) => endpoint::connect_to_host(host).await?,
        None => endpoint::connect_from_env().await?,
    };
    let host = connection.host.clone();
    let manager = is_swarm_manager(&connection.info);
    let state = swarm_state(&connection.info);
    let (backend, reason) = match choice {
        EngineChoice::Swarm => (Backend::Swarm, format!("{ENGINE_ENV}=swarm")),
        EngineChoice::Docker => (Backend::Docker, format!("{ENGINE_ENV}=docker")),
        EngineChoice::Auto if manager => (Backend::Swarm, "chosen by the engine: it is a swarm manager".to_owned()),
        EngineChoice::Auto => {
            (Backend::Docker, format!("chosen by the engine: it is not a swarm manager (swarm: {state})"))
        }
    };
    let cluster: Arc<dyn Cluster> = match backend {
        Backend::Swarm => Arc::new(SwarmCluster::from_connection(connection)?),
        _ => Arc::new(DockerCluster::from_connection(connection)?),
    };
    Ok(Connected { cluster, backend, reason, host })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_names_are_accepted() {
        assert_eq!("swarm".parse::<EngineChoice>().unwrap(), EngineChoice::Swarm);
        assert_eq!("docker".parse::<EngineChoice>().unwrap(), EngineChoice::Docker);
        assert_eq!("auto".parse::<EngineChoice>().unwrap(), EngineChoice::Auto);
        for bad in ["Swarm", "plain", " docker", "kubernetes"] {
            let err = bad.parse::<EngineChoice>().unwrap_err();
            assert!(err.to_string().contains("ATQ_ENGINE") && err.to_string().contains("`docker`"), "{err}");
        }
        assert_eq!(EngineChoice::NAMES.map(|n| n.parse::<EngineChoice>().unwrap().as_str()), EngineChoice::NAMES);
    }
}
