//! Worker discovery by DNS, for code running inside the task network.
//!
//! On a swarm overlay network, the engine's embedded DNS server (127.0.0.11, which
//! `/etc/resolv.conf` names inside every container on the network) answers
//! `tasks.<service>` with the address of every running replica of the service — whatever its
//! endpoint mode. A master, a probe, or atq itself running in a container attached to the
//! task network can use it instead of asking the engine. Outside such a container the name
//! does not resolve: use [`Cluster::replicas`](crate::Cluster::replicas) there.
//!
//! The resolver is hickory's, configured from the system (`/etc/resolv.conf`) with its cache
//! turned off: the embedded DNS answers with long TTLs, and a replica that just started must
//! be seen on the next try.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), atq_core::Error> {
//! use std::time::Duration;
//! let workers = atq_core::discovery::wait_for_tasks("load_worker", 4, Duration::from_secs(30)).await?;
//! println!("{workers:?}");
//! # Ok(())
//! # }
//! ```

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;

use crate::error::{Error, Result};

/// The DNS name under which the embedded DNS lists every replica of `service`.
#[must_use]
pub fn tasks_name(service: &str) -> String {
    // A trailing dot makes the name absolute: no search-domain queries first.
    format!("tasks.{service}.")
}

/// A resolver from the system configuration, without a cache.
fn resolver() -> Result<TokioResolver> {
    let mut builder = TokioResolver::builder_tokio()
        .map_err(|e| Error::engine("read resolver configuration for", "/etc/resolv.conf", e))?;
    let options = builder.options_mut();
    options.cache_size = 0;
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    options.timeout = Duration::from_secs(2);
    options.attempts = 2;
    builder.build().map_err(|e| Error::engine("build resolver for", "/etc/resolv.conf", e))
}

/// The addresses `tasks.<service>` resolves to now, sorted and without duplicates; empty when
/// the name has no records (yet).
///
/// # Errors
/// [`Error::Engine`] when the resolver cannot be configured or the DNS server fails (other
/// than "no such name").
pub async fn resolve_tasks(service: &str) -> Result<Vec<IpAddr>> {
    lookup(&resolver()?, service).await
}

/// One lookup of `tasks.<service>`.
async fn lookup(resolver: &TokioResolver, service: &str) -> Result<Vec<IpAddr>> {
    let name = tasks_name(service);
    match resolver.lookup_ip(name.as_str()).await {
        Ok(found) => {
            let mut addresses: Vec<IpAddr> = found.iter().collect();
            addresses.sort();
            addresses.dedup();
            Ok(addresses)
        }
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
        Err(e) => Err(Error::engine("resolve", name, e)),
    }
}

/// Waits until `tasks.<service>` resolves to at least `n` addresses, and returns them (sorted).
///
/// Polls every 100 ms at first, backing off to 1 s.
///
/// # Errors
/// [`Error::Timeout`] naming how many addresses resolved when `timeout` passed; resolver
/// failures as [`resolve_tasks`].
pub async fn wait_for_tasks(service: &str, n: usize, timeout: Duration) -> Result<Vec<IpAddr>> {
    let resolver = resolver()?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let addresses = lookup(&resolver, service).await?;
        if addresses.len() >= n {
            return Ok(addresses);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                phase: crate::error::Phase::Discovery,
                waited: start.elapsed(),
                missing: format!(
                    "{} of {n} addresses for {} resolved: {addresses:?}",
                    addresses.len(),
                    tasks_name(service)
                ),
            });
        }
        tokio::time::sleep(pause.min(timeout.saturating_sub(start.elapsed()))).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tasks_name_is_absolute() {
        assert_eq!(tasks_name("t_worker"), "tasks.t_worker.");
    }

    #[tokio::test]
    async fn a_name_outside_any_swarm_network_resolves_to_nothing_or_errors_quickly() {
        // Outside a container on an overlay network there is no embedded DNS: the name is
        // unknown. Whatever the host resolver says, the call returns within its timeouts.
        let start = Instant::now();
        if let Ok(found) = resolve_tasks("atq-no-such-service-7f3a").await {
            assert!(found.is_empty());
        }
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
