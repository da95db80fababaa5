//! Subnets of task networks: sized to what a network must hold, chosen free from a pool.
//!
//! Left to itself the engine gives every network a **/24** (about 250 addresses) from its
//! default pool, while a task may have 10,000 workers. So every backend (and the fake, which
//! follows the same rule) asks for an explicit subnet:
//! - **size**: the smallest block that holds [`NetworkSpec::capacity`](super::NetworkSpec)
//!   addresses plus the ones the engine keeps for itself (network, gateway, broadcast, one load
//!   balancer address per swarm node), never smaller than a /24 ([`SubnetPool::prefix_for`]);
//! - **where**: the first block of that size in the pool that overlaps no network the engine
//!   already has ([`SubnetPool::choose`]) — on a swarm, one of the first [`SPREAD`] such blocks
//!   at random ([`SubnetPool::choose_spread`]): a removed overlay network lingers on the other
//!   nodes until their agents have removed its containers (seconds; on a node that was down,
//!   until it is back) while the manager no longer lists it, and a new network on the same block
//!   then has its tasks there rejected ("Pool overlaps with other one on this address space",
//!   seen in the multi-node tests when one test's network followed another's). Two creates racing
//!   for one block are told apart by the engine ("pool overlaps"): the loser tries another.
//!
//! The default pools are `10.208.0.0/13` for swarm overlay networks ([`DEFAULT_POOL`]) and
//! `10.216.0.0/13` for plain bridge networks ([`DEFAULT_DOCKER_POOL`]): about half a million
//! addresses each, outside Docker's default local pools (`172.17.0.0/16`–`172.31.0.0/16`,
//! `192.168.0.0/16`) and above the swarm's default `10.0.0.0/8` allocations, which start at
//! `10.0.0.0`. They are disjoint because the engine does not refuse an overlay and a bridge
//! with the same subnet (they live in different address spaces) — but the swarm task then
//! fails to attach ("Pool overlaps with other one on this address space"): two tasks deployed
//! at the same moment, one per backend, would otherwise pick the same first free block.
//!
//! Set [`POOL_ENV`] (`ATQ_SUBNET_POOL=10.50.0.0/16,10.60.0.0/16`) to use other ranges, for
//! instance when the default ones are routed on your network (give each backend its own range
//! if both run on one engine at once), or pass a pool to the backend
//! (`SwarmCluster::with_subnet_pool`, `DockerCluster::with_subnet_pool`).

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The environment variable that replaces [`DEFAULT_POOL`]: comma-separated IPv4 CIDR blocks.
pub const POOL_ENV: &str = "ATQ_SUBNET_POOL";

/// The pool swarm task networks (and the fake's) are carved from when [`POOL_ENV`] is not set.
pub const DEFAULT_POOL: &str = "10.208.0.0/13";

/// The pool plain Docker task networks are carved from when [`POOL_ENV`] is not set: disjoint
/// from [`DEFAULT_POOL`] (see the module docs for why).
pub const DEFAULT_DOCKER_POOL: &str = "10.216.0.0/13";

/// The longest prefix (smallest network) atq asks for: a /24, as the engine would pick itself.
pub const SMALLEST_PREFIX: u8 = 24;

/// Addresses of every subnet the engine keeps: the network address, the gateway and broadcast.
pub const RESERVED_ADDRESSES: u32 = 3;

/// An IPv4 subnet: a base address aligned to its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    /// The network address (`10.208.0.0`).
    pub base: Ipv4Addr,
    /// The prefix length (`24`).
    pub prefix: u8,
}

impl Subnet {
    /// The subnet of `prefix` bits at `base`; None when `prefix` > 32 or `base` has bits set
    /// past the prefix.
    #[must_use]
    pub fn new(base: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        (prefix <= 32 && u32::from(base) & !mask(prefix) == 0).then_some(Subnet { base, prefix })
    }

    /// How many addresses it spans (network and broadcast included).
    #[must_use]
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Host numbers a replica can get: all but the network address, the gateway and broadcast.
    #[must_use]
    pub fn usable(self) -> u32 {
        u32::try_from(self.size().saturating_sub(u64::from(RESERVED_ADDRESSES))).unwrap_or(u32::MAX)
    }

    /// The gateway: the first address after the network address (`10.208.0.1`).
    #[must_use]
    pub fn gateway(self) -> Ipv4Addr {
        self.host(1)
    }

    /// Whether `addr` lies in this subnet.
    #[must_use]
    pub fn contains(self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(v4) => u32::from(v4) & mask(self.prefix) == u32::from(self.base),
            IpAddr::V6(_) => false,
        }
    }

    /// Whether the two subnets share an address.
    #[must_use]
    pub fn overlaps(self, other: Subnet) -> bool {
        let shorter = self.prefix.min(other.prefix);
        u32::from(self.base) & mask(shorter) == u32::from(other.base) & mask(shorter)
    }

    /// The address `host` places after the network address (wrapping inside the subnet).
    #[must_use]
    pub fn host(self, host: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | (host & !mask(self.prefix)))
    }
}

/// The netmask of `prefix` bits.
fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    /// `10.208.0.0/12`; the base must be aligned to the prefix.
    fn from_str(s: &str) -> std::result::Result<Subnet, String> {
        let (base, prefix) =
            s.trim().split_once('/').ok_or_else(|| format!("{s:?} is not a CIDR block (a.b.c.d/n)"))?;
        let base: Ipv4Addr = base.parse().map_err(|_| format!("{base:?} is not an IPv4 address"))?;
        let prefix: u8 =
            prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("{prefix:?} is not 0 to 32"))?;
        Subnet::new(base, prefix).ok_or_else(|| {
            format!("{s} has bits set past its prefix (is it {}/{prefix}?)", {
                Ipv4Addr::from(u32::from(base) & mask(prefix))
            })
        })
    }
}

/// The ranges task networks are carved from (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPool {
    ranges: Vec<Subnet>,
}

impl Default for SubnetPool {
    /// [`DEFAULT_POOL`].
    fn default() -> Self {
        SubnetPool { ranges: vec![DEFAULT_POOL.parse().expect("the default pool is a CIDR block")] }
    }
}

impl FromStr for SubnetPool {
    type Err = String;

    /// Comma-separated CIDR blocks (`10.50.0.0/16,10.60.0.0/16`), each at most a /24.
    fn from_str(s: &str) -> std::result::Result<SubnetPool, String> {
        let ranges = s
            .split(',')
            .filter(|r| !r.trim().is_empty())
            .map(|r| {
                let subnet: Subnet = r.parse()?;
                if subnet.prefix > SMALLEST_PREFIX {
                    return Err(format!("{subnet} is smaller than a /{SMALLEST_PREFIX}, the smallest task network"));
                }
                Ok(subnet)
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        if ranges.is_empty() {
            return Err("no CIDR block given".to_owned());
        }
        Ok(SubnetPool { ranges })
    }
}

impl SubnetPool {
    /// A pool of these ranges.
    ///
    /// # Errors
    /// A message when there is none, or one is smaller than a /24.
    pub fn new(ranges: impl IntoIterator<Item = Subnet>) -> std::result::Result<SubnetPool, String> {
        let text: Vec<String> = ranges.into_iter().map(|r| r.to_string()).collect();
        text.join(",").parse()
    }

    /// [`POOL_ENV`] when set, else `default` ([`DEFAULT_POOL`] or [`DEFAULT_DOCKER_POOL`]).
    ///
    /// # Errors
    /// [`Error::Setting`] naming the variable when its value is not a list of CIDR blocks.
    pub fn from_env(default: &str) -> Result<SubnetPool> {
        match std::env::var(POOL_ENV) {
            Ok(value) if !value.trim().is_empty() => value.parse().map_err(|why: String| Error::Setting {
                name: POOL_ENV,
                value,
                expected: format!("comma-separated IPv4 CIDR blocks, each a /{SMALLEST_PREFIX} or larger ({why})"),
            }),
            _ => Ok(default.parse().expect("the default pools are CIDR blocks")),
        }
    }

    /// The ranges, in the order they are tried.
    #[must_use]
    pub fn ranges(&self) -> &[Subnet] {
        &self.ranges
    }

    /// The prefix length of the smallest subnet holding `addresses` replicas plus
    /// [`RESERVED_ADDRESSES`] and `extra` (the engine's own, such as a swarm's load balancer
    /// address per node); never longer than [`SMALLEST_PREFIX`].
    #[must_use]
    pub fn prefix_for(addresses: u32, extra: u32) -> u8 {
        let needed = u64::from(addresses) + u64::from(RESERVED_ADDRESSES) + u64::from(extra);
        let bits = 64 - (needed.max(2) - 1).leading_zeros();
        u8::try_from(32u32.saturating_sub(bits)).unwrap_or(0).min(SMALLEST_PREFIX)
    }

    /// Every block of `prefix` bits in the pool that overlaps none of `used`, lowest first.
    pub fn candidates<'a>(&'a self, prefix: u8, used: &'a [Subnet]) -> impl Iterator<Item = Subnet> + 'a {
        self.ranges.iter().filter(move |r| r.prefix <= prefix).flat_map(move |range| {
            let step = 1u64 << (32 - u32::from(prefix));
            let start = u64::from(u32::from(range.base));
            (0..range.size() / step).filter_map(move |i| {
                let base = u32::try_from(start + i * step).ok()?;
                let subnet = Subnet { base: Ipv4Addr::from(base), prefix };
                (!used.iter().any(|u| u.overlaps(subnet))).then_some(subnet)
            })
        })
    }

    /// One of the first [`SPREAD`] free blocks of `prefix` bits, picked by `seed` (see the module
    /// docs for why a swarm does not take the first).
    #[must_use]
    pub fn choose_spread(&self, prefix: u8, used: &[Subnet], seed: u64) -> Option<Subnet> {
        let free: Vec<Subnet> = self.candidates(prefix, used).take(SPREAD).collect();
        let len = u64::try_from(free.len()).ok().filter(|n| *n > 0)?;
        free.get(usize::try_from(seed % len).ok()?).copied()
    }

    /// The first free block of `prefix` bits (see [`candidates`](Self::candidates)).
    #[must_use]
    pub fn choose(&self, prefix: u8, used: &[Subnet]) -> Option<Subnet> {
        self.candidates(prefix, used).next()
    }

    /// The error when no block of `prefix` bits is free, naming the pool and what to do.
    pub(crate) fn exhausted(&self, network: &str, prefix: u8) -> Error {
        let pool: Vec<String> = self.ranges.iter().map(ToString::to_string).collect();
        Error::engine(
            "create network",
            network,
            format!(
                "no free /{prefix} left in the subnet pool {}: remove unused networks (`atq prune`), \
                 or give atq more room with {POOL_ENV}",
                pool.join(",")
            ),
        )
    }
}

/// How many of the first free blocks [`SubnetPool::choose_spread`] picks among.
pub const SPREAD: usize = 256;

/// A seed that differs per call and per process (no cryptography needed: it spreads networks).
fn seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ CALLS.fetch_add(1, Ordering::Relaxed);
    // splitmix64's finaliser, so close seeds pick far-apart blocks.
    let mut z = mixed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How many free blocks [`create_in_pool`] tries before giving up (each refusal is another
/// process taking the same block at the same moment).
const CREATE_ATTEMPTS: usize = 16;

/// The IPv4 subnets of every network the engine has (a swarm manager's answer includes the
/// swarm's overlay networks).
pub(crate) async fn subnets_in_use(
    docker: &bollard::Docker,
) -> std::result::Result<Vec<Subnet>, bollard::errors::Error> {
    let networks = docker.list_networks(None::<bollard::query_parameters::ListNetworksOptions>).await?;
    Ok(networks
        .iter()
        .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
        .flatten()
        .filter_map(|c| c.subnet.as_deref()?.parse().ok())
        .collect())
}

/// Whether a create may have to yield its block after the fact: a plain engine refuses an
/// overlapping subnet at create ("Pool overlaps"), a swarm manager accepts it and its allocator
/// then never allocates the later network, whose tasks stay pending forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overlaps {
    /// The engine refuses an overlapping create itself.
    RefusedByEngine,
    /// The engine accepts it: after the create, the later of two overlapping networks yields.
    CheckedAfterCreate,
}

/// A network as the overlap check sees it: id, subnets, and when the engine created it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    id: String,
    subnets: Vec<Subnet>,
    created: Option<(i64, u32)>,
}

/// An order for the engine's `Created` timestamps (`2026-12-02T04:13:22.123456789Z`): Unix
/// seconds and nanoseconds; `None` for anything else.
fn created_order(timestamp: &str) -> Option<(i64, u32)> {
    let seconds = super::swarm::convert::unix_seconds(timestamp)?;
    let nanos = match timestamp.get(19..).and_then(|rest| rest.strip_prefix('.')) {
        Some(fraction) => {
            let digits: String = fraction.chars().take_while(char::is_ascii_digit).take(9).collect();
            format!("{digits:0<9}").parse().ok()?
        }
        None => 0,
    };
    Some((seconds, nanos))
}

/// Whether the network `ours` must give its block up to one of `others` that overlaps it: it
/// does when any overlapping network was created before it (ties: the smaller id keeps it).
/// Both sides of a race agree, whichever lists first: the earlier one never yields, and the
/// later one sees the earlier (it existed before the later was created). A network whose
/// creation time is unknown, or ours when its own is, yields.
fn must_yield(ours: &Held, subnet: Subnet, others: &[Held]) -> bool {
    others.iter().filter(|o| o.id != ours.id && o.subnets.iter().any(|s| s.overlaps(subnet))).any(|o| {
        match (o.created, ours.created) {
            (Some(theirs), Some(mine)) => (theirs, &o.id) < (mine, &ours.id),
            // Unknown on either side: yield (a retry costs a create; a shared block, the task).
            _ => true,
        }
    })
}

/// Every network of the engine with its subnets and creation time.
async fn networks_held(docker: &bollard::Docker) -> std::result::Result<Vec<Held>, bollard::errors::Error> {
    let networks = docker.list_networks(None::<bollard::query_parameters::ListNetworksOptions>).await?;
    Ok(networks
        .into_iter()
        .map(|n| Held {
            subnets: n
                .ipam
                .and_then(|i| i.config)
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.subnet.as_deref()?.parse().ok())
                .collect(),
            created: n.created.as_deref().and_then(created_order),
            id: n.id.unwrap_or_default(),
        })
        .collect())
}

/// Creates the network `request` describes with an IPAM subnet of `prefix` bits from `pool`:
/// the first block no network of the engine overlaps (with `spread`, one of the first
/// [`SPREAD`] at random); when the engine refuses a block as overlapping (another create took it
/// meanwhile), or — on an engine that accepts overlaps — an older network took it meanwhile (this
/// one is removed again), another one, up to [`CREATE_ATTEMPTS`] times. Returns the new network's
/// id.
pub(crate) async fn create_in_pool(
    docker: &bollard::Docker,
    pool: &SubnetPool,
    prefix: u8,
    spread: bool,
    request: bollard::models::NetworkCreateRequest,
    overlaps: Overlaps,
    map: impl Fn(bollard::errors::Error) -> Error,
) -> Result<String> {
    let name = request.name.clone();
    let mut used = subnets_in_use(docker).await.map_err(&map)?;
    for _ in 0..CREATE_ATTEMPTS {
        let subnet = if spread { pool.choose_spread(prefix, &used, seed()) } else { pool.choose(prefix, &used) };
        let subnet = subnet.ok_or_else(|| pool.exhausted(&name, prefix))?;
        let mut request = request.clone();
        request.ipam = Some(bollard::models::Ipam {
            config: Some(vec![bollard::models::IpamConfig {
                subnet: Some(subnet.to_string()),
                gateway: Some(subnet.gateway().to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        match docker.create_network(request).await {
            Ok(created) if overlaps == Overlaps::RefusedByEngine => return Ok(created.id),
            Ok(created) => {
                let held = networks_held(docker).await.map_err(&map)?;
                let ours = held.iter().find(|n| n.id == created.id).cloned().unwrap_or(Held {
                    id: created.id.clone(),
                    subnets: vec![subnet],
                    created: None,
                });
                if !must_yield(&ours, subnet, &held) {
                    return Ok(created.id);
                }
                tracing::debug!(network = %name, %subnet, "an older network took the block meanwhile; trying another");
                docker.remove_network(&created.id).await.map_err(&map)?;
                used.extend(held.into_iter().filter(|n| n.id != created.id).flat_map(|n| n.subnets));
                used.push(subnet);
            }
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.to_ascii_lowercase().contains("overlaps") =>
            {
                used.push(subnet);
            }
            Err(e) => return Err(map(e)),
        }
    }
    Err(Error::engine(
        "create network",
        name,
        format!("the engine refused {CREATE_ATTEMPTS} free-looking subnets of the pool as overlapping; retry"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeSet;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn a_network_is_sized_to_its_capacity_and_never_below_a_slash_24() {
        assert_eq!(SubnetPool::prefix_for(0, 0), 24);
        assert_eq!(SubnetPool::prefix_for(250, 0), 24);
        assert_eq!(SubnetPool::prefix_for(253, 0), 24, "253 + 3 reserved = 256");
        assert_eq!(SubnetPool::prefix_for(254, 0), 23);
        assert_eq!(SubnetPool::prefix_for(302, 1), 23);
        assert_eq!(SubnetPool::prefix_for(10_002, 1), 18);
        assert_eq!(SubnetPool::prefix_for(u32::MAX, u32::MAX), 0);
        for n in [1, 100, 300, 5_000, 10_002] {
            let prefix = SubnetPool::prefix_for(n, 1);
            let subnet = Subnet { base: Ipv4Addr::new(10, 0, 0, 0), prefix };
            assert!(u64::from(subnet.usable()) > u64::from(n), "{n} in {subnet}");
        }
    }

    fn held(id: &str, subnet: &str, created: &str) -> Held {
        Held { id: id.into(), subnets: vec![net(subnet)], created: created_order(created) }
    }

    /// Two deploys racing for one block on swarm (which accepts the overlap, then never
    /// allocates the later network): whichever lists first, exactly the later one yields.
    #[test]
    fn of_two_overlapping_networks_only_the_later_yields_its_block() {
        let block = net("10.216.0.0/24");
        let a = held("aaa", "10.216.0.0/24", "2026-12-02T04:13:22.1Z");
        let b = held("bbb", "10.216.0.0/23", "2026-12-02T04:13:22.12Z");
        assert!(!must_yield(&a, block, &[a.clone(), b.clone()]), "the earlier keeps it");
        assert!(!must_yield(&a, block, std::slice::from_ref(&a)), "it listed before the other existed");
        assert!(must_yield(&b, block, &[a.clone(), b.clone()]), "the later yields (0.12 s after 0.1 s)");
        let unrelated = held("ccc", "10.216.4.0/24", "2020-01-01T00:00:00Z");
        assert!(!must_yield(&b, block, &[b.clone(), unrelated]), "no overlap, no yield");
        // The same instant: the smaller id keeps the block.
        let a2 = held("aaa", "10.216.0.0/24", "2026-12-02T04:13:22.1Z");
        let b2 = held("bbb", "10.216.0.0/24", "2026-12-02T04:13:22.100Z");
        assert!(!must_yield(&a2, block, &[a2.clone(), b2.clone()]));
        assert!(must_yield(&b2, block, &[a2.clone(), b2.clone()]));
        // A rival of unknown age is taken as older; ours of unknown age yields to any rival.
        let old = Held { id: "zzz".into(), subnets: vec![block], created: None };
        assert!(must_yield(&a, block, &[a.clone(), old.clone()]));
        assert_eq!(created_order("2026-12-02T04:13:22.123456789Z").map(|o| o.1), Some(123_456_789));
        assert_eq!(created_order("not a time"), None);
    }

    #[test]
    fn the_first_free_block_is_chosen_around_the_ones_in_use() {
        let pool: SubnetPool = "10.208.0.0/16".parse().unwrap();
        assert!(!net(DEFAULT_POOL).overlaps(net(DEFAULT_DOCKER_POOL)));
        assert_eq!(pool.choose(24, &[]), Some(net("10.208.0.0/24")));
        let used = [net("10.208.0.0/24"), net("10.208.2.0/25")];
        assert_eq!(pool.choose(24, &used), Some(net("10.208.1.0/24")));
        assert_eq!(pool.choose(23, &used), Some(net("10.208.4.0/23")), "10.208.2.0/23 overlaps 10.208.2.0/25");
        // A network elsewhere that covers the whole pool leaves nothing.
        assert_eq!(pool.choose(24, &[net("10.0.0.0/8")]), None);
        let spread: BTreeSet<Subnet> = (0..64).filter_map(|seed| pool.choose_spread(24, &used, seed)).collect();
        assert_eq!(spread.len(), 64, "different seeds, different free blocks");
        assert!(spread.iter().all(|s| !used.iter().any(|u| u.overlaps(*s))));
        assert_eq!(pool.choose_spread(24, &[net("10.0.0.0/8")], 7), None);
        let all: Vec<Subnet> = pool.candidates(17, &[]).collect();
        assert_eq!(all, [net("10.208.0.0/17"), net("10.208.128.0/17")]);
        assert_eq!(pool.candidates(15, &[]).count(), 0, "a block larger than the pool");
    }

    #[test]
    fn later_ranges_are_tried_when_the_first_is_full() {
        let pool: SubnetPool = "10.1.0.0/24, 10.2.0.0/23".parse().unwrap();
        assert_eq!(pool.choose(24, &[net("10.1.0.0/24")]), Some(net("10.2.0.0/24")));
        assert_eq!(pool.choose(23, &[]), Some(net("10.2.0.0/23")));
    }

    #[test]
    fn pools_and_subnets_are_parsed_strictly() {
        assert_eq!(SubnetPool::default().ranges(), [net(DEFAULT_POOL)]);
        for bad in ["", "10.0.0.0", "10.0.0.1/24", "10.0.0.0/33", "300.0.0.0/8", "10.0.0.0/25", "x/8"] {
            assert!(bad.parse::<SubnetPool>().is_err(), "{bad:?}");
        }
        assert!("10.0.0.1/24".parse::<Subnet>().unwrap_err().contains("10.0.0.0/24"));
    }

    #[test]
    fn overlap_and_membership() {
        assert!(net("10.0.0.0/8").overlaps(net("10.3.4.0/24")));
        assert!(net("10.3.4.0/24").overlaps(net("10.0.0.0/8")));
        assert!(!net("10.3.4.0/24").overlaps(net("10.3.5.0/24")));
        let s = net("10.208.2.0/23");
        assert!(s.contains("10.208.3.255".parse().unwrap()) && !s.contains("10.208.4.0".parse().unwrap()));
        assert_eq!(s.host(2), Ipv4Addr::new(10, 208, 2, 2));
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 208, 2, 1));
        assert_eq!((s.size(), s.usable()), (512, 509));
    }
}
