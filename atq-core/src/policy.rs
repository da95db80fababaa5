//! What a client of a shared service may run: an image allow-list (glob patterns), the most
//! replicas per run, the most runs at once, and whether host paths, named volumes and placement
//! constraints are allowed at all.
//!
//! The defaults refuse `dataPath`, `dataVolume` and placement constraints: a bind mount of a
//! host path — even read-only, even of `/var/run` — hands the container the engine's socket,
//! which is root on every node; a constraint lets a client pick the node (a manager, say). A
//! service operator allows them per token when the clients are trusted.

use serde::{Deserialize, Serialize};

use crate::error::Problem;
use crate::service::Service;
use crate::task::Task;

/// The rules one client's runs must follow. `Default` allows every image, any replica count up
/// to the task's own limit, any number of runs at once, and no host paths, volumes or constraints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Policy {
    /// Glob patterns (`lab/*`, `atq-test/busybox:*`) an image must match; empty: any image.
    pub images: Vec<String>,
    /// The most workers one run may ask for (None: the task's own limit).
    pub max_replicas: Option<u32>,
    /// The most runs of this client queued or running at once (None: no limit).
    pub max_concurrent_runs: Option<usize>,
    /// Whether a run may bind a host path (`dataPath`).
    pub allow_data_path: bool,
    /// Whether a run may mount a named volume (`dataVolume`).
    pub allow_data_volume: bool,
    /// Whether a run may set placement constraints.
    pub allow_constraints: bool,
}

/// A task refused by a [`Policy`]: every rule it breaks, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by the service's policy: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PolicyRefusal {
    /// The rules broken, with the field of each.
    pub problems: Vec<Problem>,
}

impl Policy {
    /// Every rule `task` breaks (nothing: it may run). The concurrent-runs limit is checked by
    /// whoever counts the client's runs ([`Policy::max_concurrent_runs`]).
    ///
    /// ```
    /// use atq_core::policy::Policy;
    /// use atq_core::{Service, Task};
    ///
    /// let policy = Policy { images: vec!["lab/*".into()], ..Policy::default() };
    /// let task = Task::builder("t").workers(Service::new("evil/miner")).master(Service::new("lab/jmeter")).build()?;
    /// let refusal = policy.check(&task).unwrap_err();
    /// assert_eq!(refusal.problems[0].field, "worker.image");
    /// # Ok::<(), atq_core::ValidationError>(())
    /// ```
    ///
    /// # Errors
    /// A [`PolicyRefusal`] listing every rule broken.
    pub fn check(&self, task: &Task) -> Result<(), PolicyRefusal> {
        let mut problems = Vec::new();
        self.check_service(&mut problems, "worker", task.workers(), true);
        self.check_service(&mut problems, "master", task.master(), false);
        if let Some(wait) = task.wait_command() {
            if let Some(image) = wait.image.as_deref() {
                self.check_image(&mut problems, "waitCommand.image", image);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PolicyRefusal { problems })
        }
    }

    fn check_service(&self, problems: &mut Vec<Problem>, role: &str, service: &Service, workers: bool) {
        let mut refuse = |field: &str, message: String| {
            problems.push(Problem { field: format!("{role}.{field}"), message, line: None });
        };
        if !self.image_allowed(&service.image) {
            refuse("image", self.image_message(&service.image));
        }
        if workers {
            if let Some(max) = self.max_replicas.filter(|max| service.replicas > *max) {
                refuse(
                    "replicas",
                    format!("at most {max} replicas per run are allowed here, not {}", service.replicas),
                );
            }
        }
        if service.data_path.is_some() && !self.allow_data_path {
            refuse(
                "dataPath",
                "host paths are not allowed here (a bind mount can expose the engine's socket); upload a data bundle and use fileid".into(),
            );
        }
        if service.data_volume.is_some() && !self.allow_data_volume {
            refuse("dataVolume", "named volumes are not allowed here; upload a data bundle and use fileid".into());
        }
        if !service.constraints.is_empty() && !self.allow_constraints {
            refuse("constraints", "placement constraints are not allowed here; the service places replicas".into());
        }
    }

    fn check_image(&self, problems: &mut Vec<Problem>, field: &str, image: &str) {
        if !self.image_allowed(image) {
            problems.push(Problem { field: field.into(), message: self.image_message(image), line: None });
        }
    }

    fn image_message(&self, image: &str) -> String {
        format!("image `{image}` is not allowed here; allowed: {}", self.images.join(", "))
    }

    /// Whether `image` matches the allow-list (an empty list allows every image; a pattern that is
    /// not a valid glob matches only itself).
    #[must_use]
    pub fn image_allowed(&self, image: &str) -> bool {
        self.images.is_empty()
            || self.images.iter().any(|pattern| match glob::Pattern::new(pattern) {
                Ok(glob) => glob.matches(image),
                Err(_) => pattern == image,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(worker: Service) -> Task {
        Task::builder("t").workers(worker).master(Service::new("lab/jmeter:2.13")).build().unwrap()
    }

    #[test]
    fn images_must_match_one_of_the_patterns() {
        let policy = Policy { images: vec!["lab/*".into(), "atq-test/busybox:latest".into()], ..Policy::default() };
        assert!(policy.check(&task(Service::new("lab/k6:1"))).is_ok());
        assert!(policy.check(&task(Service::new("atq-test/busybox:latest"))).is_ok());
        let refusal = policy.check(&task(Service::new("atq-test/busybox:other"))).unwrap_err();
        assert_eq!(refusal.problems.len(), 1);
        assert_eq!(refusal.problems[0].field, "worker.image");
    }

    #[test]
    fn host_paths_volumes_and_constraints_are_refused_by_default() {
        let worker = Service::new("img").data_path("/var/run").constraint("node.role==manager");
        let refusal = Policy::default().check(&task(worker)).unwrap_err();
        let fields: Vec<_> = refusal.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["worker.dataPath", "worker.constraints"]);
        let open = Policy { allow_data_path: true, allow_constraints: true, ..Policy::default() };
        assert!(open.check(&task(Service::new("img").data_path("/var/run").constraint("node.role==manager"))).is_ok());
    }

    #[test]
    fn replicas_above_the_limit_are_refused() {
        let policy = Policy { max_replicas: Some(4), ..Policy::default() };
        assert!(policy.check(&task(Service::new("img").replicas(4))).is_ok());
        let refusal = policy.check(&task(Service::new("img").replicas(5))).unwrap_err();
        assert_eq!(refusal.problems[0].field, "worker.replicas");
    }
}
