//! From atq's engine-neutral specs to bollard's models, and back.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, Mount as BollardMount, MountType, NetworkAttachmentConfig,
    ServiceSpec as BollardServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile1, TaskSpecPlacement, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};

use super::template;
use crate::cluster::{EndpointMode, LabelSelector, MountKind, ServiceSpec};

/// Labels as bollard wants them.
pub(in crate::cluster) fn labels(labels: &BTreeMap<String, String>) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Labels as atq hands them out.
pub(in crate::cluster) fn labels_back(labels: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    labels.unwrap_or_default().into_iter().collect()
}

/// A `filters` map selecting by label, server-side (`label=k` / `label=k=v`).
pub(in crate::cluster) fn label_filters(selector: &LabelSelector) -> HashMap<String, Vec<String>> {
    let conditions: Vec<String> = selector
        .conditions
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    let mut filters = HashMap::new();
    if !conditions.is_empty() {
        filters.insert("label".to_string(), conditions);
    }
    filters
}

/// Nanoseconds, as the engine counts durations.
pub(in crate::cluster) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// atq's [`ServiceSpec`] as the engine's: replicated, restart policy none, the spec's endpoint
/// mode, labels on the service *and* its containers.
/// The engine's service spec for `spec`; `local_node` is the id of the node this client talks
/// to, which [`Placement::local_node`](crate::cluster::Placement::local_node) pins the service to.
pub(super) fn service_spec(spec: &ServiceSpec, local_node: &str) -> BollardServiceSpec {
    let mut constraints = spec.placement.constraints.clone();
    if spec.placement.local_node && !local_node.is_empty() {
        constraints.push(format!("node.id=={local_node}"));
    }
    let health_check = spec.health_check.as_ref().map(health_config);
    let mounts = mounts(spec);
    let configs: Vec<TaskSpecContainerSpecConfigs> = spec
        .configs
        .iter()
        .map(|c| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(c.target.clone()),
                uid: Some("0".to_string()),
                gid: Some("0".to_string()),
                mode: Some(c.mode),
            }),
            config_id: Some(c.config_id.clone()),
            config_name: Some(c.config_name.clone()),
            ..Default::default()
        })
        .collect();
    let resources = spec.resources.map(|r| TaskSpecResources {
        limits: Some(Limit {
            // Rounded to whole nano-CPUs; the validated range keeps this far from overflow.
            #[allow(clippy::cast_possible_truncation)]
            nano_cpus: r.cpus.map(|c| (c * 1e9).round() as i64),
            memory_bytes: r.memory.map(|m| i64::try_from(m.0).unwrap_or(i64::MAX)),
            ..Default::default()
        }),
        ..Default::default()
    });
    let container_spec = TaskSpecContainerSpec {
        image: Some(spec.image.clone()),
        labels: Some(labels(&spec.container_labels)),
        command: spec.command.clone(),
        args: (!spec.args.is_empty()).then(|| spec.args.clone()),
        env: Some(
            spec.env
                .iter()
                .map(|(k, v)| format!("{k}={}", template::literal_env_value(v)))
                .chain(spec.slot_env.iter().map(|k| format!("{k}={}", template::SLOT)))
                .collect(),
        ),
        tty: Some(spec.tty),
        mounts: (!mounts.is_empty()).then_some(mounts),
        configs: (!configs.is_empty()).then_some(configs),
        health_check,
        stop_grace_period: spec.stop_grace_period.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    BollardServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(labels(&spec.labels)),
        task_template: Some(TaskSpec {
            container_spec: Some(container_spec),
            resources,
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            placement: (!constraints.is_empty())
                .then(|| TaskSpecPlacement { constraints: Some(constraints), ..Default::default() }),
            networks: Some(
                spec.networks
                    .iter()
                    .map(|n| NetworkAttachmentConfig { target: Some(n.clone()), ..Default::default() })
                    .collect(),
            ),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(i64::from(spec.replicas)) }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(match spec.endpoint_mode {
                EndpointMode::Dnsrr => EndpointSpecModeEnum::DNSRR,
                EndpointMode::Vip => EndpointSpecModeEnum::VIP,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The spec's bind and volume mounts as the engine takes them (services and containers alike).
pub(in crate::cluster) fn mounts(spec: &ServiceSpec) -> Vec<BollardMount> {
    spec.mounts
        .iter()
        .map(|m| BollardMount {
            target: Some(m.target.clone()),
            source: Some(m.source.clone()),
            typ: Some(match m.kind {
                MountKind::Bind => MountType::BIND,
                MountKind::Volume => MountType::VOLUME,
            }),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect()
}

/// The engine's health check for atq's: a shell command (`CMD-SHELL`), as swarm and plain
/// containers both take it.
pub(in crate::cluster) fn health_config(h: &crate::service::HealthCheck) -> HealthConfig {
    HealthConfig {
        test: Some(vec!["CMD-SHELL".to_string(), h.test.clone()]),
        interval: h.interval.map(nanos),
        timeout: h.timeout.map(nanos),
        retries: h.retries.map(i64::from),
        start_period: h.start_period.map(nanos),
        ..Default::default()
    }
}

/// Unix seconds of an RFC 3339 timestamp as the engine writes them
/// (`2026-11-25T14:11:58.553882561Z`, or with a `+hh:mm` offset, or none).
///
/// An engine answer is untrusted: anything but a well-formed timestamp (a 4-digit year, every
/// field in range, the day within its month) is `None`, and the arithmetic is checked, so no
/// answer can overflow it.
pub(in crate::cluster) fn unix_seconds(timestamp: &str) -> Option<i64> {
    let b = timestamp.as_bytes();
    let separators_ok =
        b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && matches!(b[10], b'T' | b't') && b[13] == b':' && b[16] == b':';
    if !separators_ok {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // 60: a leap second is valid RFC 3339 (and counted as the next second's start here).
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // The first 19 bytes are ASCII (checked above), so this is a character boundary.
    let mut zone = &timestamp[19..];
    if let Some(fraction) = zone.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        zone = &fraction[n..];
    }
    let offset = match zone.as_bytes() {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    days_from_civil(year, month, day)?
        .checked_mul(86_400)?
        .checked_add(hour * 3600 + minute * 60 + second)?
        .checked_sub(offset)
}

/// The value of a run of ASCII digits (at most 4 here), or `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
}

/// Days in `month` (1–12) of `year` (proleptic Gregorian).
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid civil date (Howard Hinnant's algorithm), checked.
fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    let y = if month <= 2 { year.checked_sub(1)? } else { year };
    let era = y.div_euclid(400);
    let yoe = y.checked_sub(era.checked_mul(400)?)?;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.checked_mul(146_097)?.checked_add(doe)?.checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ConfigMount, Mount, Placement};
    use crate::service::{HealthCheck, Resources};

    #[test]
    fn timestamps_parse_to_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2026-11-25T14:11:58.553882561Z"), Some(1_795_615_918));
        assert_eq!(unix_seconds("2026-11-25T15:11:58+01:00"), Some(1_795_615_918));
        assert_eq!(unix_seconds("garbage"), None);
    }

    /// An engine answer is untrusted: a year, offset or field far out of range is no timestamp,
    /// never an overflow (which panics in debug builds).
    #[test]
    fn out_of_range_timestamps_are_none_not_an_overflow() {
        assert_eq!(unix_seconds("999999999999999999-01-01T00:00:00Z"), None);
        assert_eq!(unix_seconds("-999999999999999999-01-01T00:00:00Z"), None);
        assert_eq!(unix_seconds("2026-01-01T00:00:00+999999999999999999:00"), None);
        assert_eq!(unix_seconds("2026-13-01T00:00:00Z"), None);
        assert_eq!(unix_seconds("2026-01-32T00:00:00Z"), None);
        assert_eq!(unix_seconds("2026-01-01T24:00:00Z"), None);
        assert_eq!(unix_seconds("2026-01-01T00:60:00Z"), None);
        assert_eq!(unix_seconds("2026-01-01T00:00:00+24:00"), None);
        assert_eq!(unix_seconds("+2026-01-01T00:00:00Z"), None);
        // Leap seconds are what the engine never writes, but a 60 is a valid RFC 3339 second.
        assert_eq!(unix_seconds("1970-01-01T00:00:60Z"), Some(60));
        assert_eq!(unix_seconds("9999-12-31T23:59:59Z"), Some(253_402_300_799));
        assert_eq!(unix_seconds("0001-01-01T00:00:00Z"), Some(-62_135_596_800));
    }

    #[test]
    fn label_selector_becomes_label_filters() {
        let f = label_filters(&LabelSelector::new().eq("a", "1").has("b"));
        assert_eq!(f["label"], ["a=1", "b"]);
        assert!(label_filters(&LabelSelector::new()).is_empty());
    }

    #[test]
    fn service_spec_maps_every_field() {
        let spec = ServiceSpec {
            name: "t_w".into(),
            image: "img:1".into(),
            replicas: 3,
            env: vec![("A".into(), "1".into()), ("B".into(), "{{x}}".into())],
            slot_env: vec!["ATQ_WORKER_INDEX".into()],
            args: vec!["x".into()],
            command: Some(vec!["sh".into(), "-c".into()]),
            tty: true,
            networks: vec!["net".into()],
            labels: [("l".to_string(), "s".to_string())].into(),
            container_labels: [("l".to_string(), "c".to_string())].into(),
            health_check: Some(HealthCheck::new("true").interval(Duration::from_secs(2)).retries(4)),
            resources: Some(Resources::new().cpus(1.5).memory_bytes(1 << 20)),
            placement: Placement { local_node: true, constraints: vec!["node.role==manager".into()] },
            stop_grace_period: Some(Duration::from_secs(1)),
            mounts: vec![Mount { kind: MountKind::Bind, source: "/h".into(), target: "/c".into(), read_only: true }],
            configs: vec![ConfigMount {
                config_id: "id".into(),
                config_name: "n".into(),
                target: "/atq/f".into(),
                mode: ConfigMount::EXECUTABLE,
            }],
            ..Default::default()
        };
        let s = service_spec(&spec, "node-7");
        let t = s.task_template.unwrap();
        let c = t.container_spec.unwrap();
        assert_eq!(c.env.unwrap(), ["A=1", r#"B={{"{"}}{{"{"}}x}}"#, "ATQ_WORKER_INDEX={{.Task.Slot}}"]);
        assert_eq!(c.args.unwrap(), ["x"]);
        assert_eq!(c.command.unwrap(), ["sh", "-c"]);
        assert_eq!(c.labels.unwrap()["l"], "c");
        assert_eq!(s.labels.unwrap()["l"], "s");
        let h = c.health_check.unwrap();
        assert_eq!(h.test.unwrap(), ["CMD-SHELL", "true"]);
        assert_eq!((h.interval, h.retries), (Some(2_000_000_000), Some(4)));
        let limits = t.resources.unwrap().limits.unwrap();
        assert_eq!((limits.nano_cpus, limits.memory_bytes), (Some(1_500_000_000), Some(1 << 20)));
        assert_eq!(t.restart_policy.unwrap().condition, Some(TaskSpecRestartPolicyConditionEnum::NONE));
        assert_eq!(t.networks.unwrap()[0].target.as_deref(), Some("net"));
        let file = c.configs.unwrap().remove(0).file.unwrap();
        assert_eq!((file.name.as_deref(), file.mode), (Some("/atq/f"), Some(0o555)));
        assert_eq!(c.mounts.unwrap()[0].typ, Some(MountType::BIND));
        assert_eq!(s.endpoint_spec.unwrap().mode, Some(EndpointSpecModeEnum::DNSRR));
        assert_eq!(s.mode.unwrap().replicated.unwrap().replicas, Some(3));
        assert_eq!(t.placement.unwrap().constraints.unwrap(), ["node.role==manager", "node.id==node-7"]);
        assert_eq!(c.stop_grace_period, Some(1_000_000_000));
    }
}
