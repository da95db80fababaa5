//! The wait command (ATQ-Director's `waitCommand`): a one-off run on the task network, once the
//! workers run and before the master starts, retried until it passes or its timeout passes.
//!
//! Each try is a one-off spec ([`ServiceSpec::one_off`]): a backend runs it as a plain container
//! on the task's network where it can. It gets the worker list as the master does (in its
//! environment when it fits, and always as [`WORKERS_FILE`](super::WORKERS_FILE)). It passes when
//! it exits 0 and, if `expectedResult` is set, its trimmed output equals it. Success is reported
//! as soon as it is known: the passing try's container is not waited for, it is removed with the
//! rest of the task (it carries the deploy's labels).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use super::plan::worker_list_env;
use super::Emitter;
use crate::cleanup::Record;
use crate::cluster::{ConfigMount, LogOptions, ResourceKind, ServiceSpec};
use crate::context::Context;
use crate::error::{Error, Phase, Result};
use crate::event::Event;
use crate::labels::Role;
use crate::task::{Task, WaitCommand};
use crate::wait::{self, conditions};

/// Pause between two tries.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Most bytes of a try's output kept (for the comparison and the messages).
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// Runs the wait command until it passes, or fails with [`Error::ProbeTimeout`].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    ctx: &Context,
    task: &Task,
    wait_command: &WaitCommand,
    network: &str,
    workers: &[IpAddr],
    labels: BTreeMap<String, String>,
    workers_file: &ConfigMount,
    record: &mut Record,
    emitter: &Emitter,
) -> Result<()> {
    let cluster = &*ctx.cluster;
    let name = task.probe_service_name();
    let image = wait_command.image.clone().unwrap_or_else(|| task.master().image.clone());
    let started = Instant::now();
    let deadline = started + wait_command.timeout;
    let expected = wait_command.expected_result.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let mut env = worker_list_env(workers);
    env.push(("ATQ_TASK".into(), task.name().into()));
    env.push(("ATQ_ROLE".into(), Role::Probe.as_str().into()));
    let spec = ServiceSpec {
        name: name.clone(),
        image: image.clone(),
        replicas: 1,
        env,
        command: Some(vec!["sh".into(), "-c".into()]),
        args: vec![wait_command.command.clone()],
        networks: vec![network.to_owned()],
        container_labels: labels.clone(),
        labels,
        configs: vec![workers_file.clone()],
        one_off: true,
        ..ServiceSpec::default()
    };
    emitter.emit(Event::ProbeStarted { task: task.name().to_owned(), image });
    let mut attempt = 0;
    loop {
        attempt += 1;
        let id = cluster.create_service(&spec).await?;
        record.push(ResourceKind::Service, id.clone());
        let (exit_code, output) = attempt_result(ctx, &name, network, deadline).await?;
        if exit_code == Some(0) && expected.is_none_or(|e| output.trim() == e) {
            emitter.emit(Event::ProbePassed { task: task.name().to_owned(), attempts: attempt });
            return Ok(());
        }
        let summary = match exit_code {
            Some(code) => format!("exit code {code}, output {:?}", output.trim()),
            None => format!("did not finish in time, output {:?}", output.trim()),
        };
        emitter.emit(Event::ProbeAttempt { task: task.name().to_owned(), attempt, result: summary.clone() });
        // The next try reuses the name: this one goes first.
        match cluster.remove_service(&id).await {
            Ok(()) => record.forget(&id),
            Err(e) if e.is_not_found() => record.forget(&id),
            Err(e) => return Err(e),
        }
        if Instant::now() + RETRY_PAUSE >= deadline {
            return Err(Error::ProbeTimeout { attempts: attempt, waited: started.elapsed(), last: summary });
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// One try: waits for it to exit (or the deadline) and reads its output. A try that never ran
/// (its image is missing, its command cannot start) fails the probe at once.
async fn attempt_result(
    ctx: &Context,
    service: &str,
    network: &str,
    deadline: Instant,
) -> Result<(Option<i64>, String)> {
    let gone = || Error::NotFound { kind: "probe", name: service.to_owned() };
    let exited = wait::replicas_until(
        &*ctx.cluster,
        service,
        network,
        ctx.poll,
        Some(deadline),
        Phase::Probe,
        conditions::exited(gone, conditions::SCHEDULE_GRACE),
    )
    .await;
    match exited {
        Ok(r) if r.exit_code.is_none() => Err(conditions::replica_failed(service, &r)),
        Ok(r) => Ok((r.exit_code, output(ctx, service).await?)),
        Err(Error::Timeout { .. }) => Ok((None, output(ctx, service).await.unwrap_or_default())),
        Err(e) => Err(e),
    }
}

/// The try's output, stdout and stderr in order, at most [`MAX_OUTPUT_BYTES`].
async fn output(ctx: &Context, service: &str) -> Result<String> {
    let mut lines = ctx.cluster.logs(service, &LogOptions::all()).await?;
    let mut out = String::new();
    while let Some(line) = lines.next().await {
        let line = line?;
        if out.len() + line.text.len() < MAX_OUTPUT_BYTES {
            out.push_str(&line.text);
            out.push('\n');
        }
    }
    Ok(out)
}
