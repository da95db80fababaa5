//! Subnets and addresses of a fake engine's networks.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

/// An IPv4 subnet of a fake network: `10.<n>.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    /// The network address (`10.3.0.0`).
    pub base: Ipv4Addr,
    /// The prefix length (16).
    pub prefix: u8,
}

impl Subnet {
    /// The `index`-th /16 of 10.0.0.0/8.
    pub(super) fn nth(index: u8) -> Self {
        Subnet { base: Ipv4Addr::new(10, index, 0, 0), prefix: 16 }
    }

    /// The gateway: the first address after the network address (`10.3.0.1`).
    #[must_use]
    pub fn gateway(self) -> Ipv4Addr {
        self.host(1)
    }

    /// Whether `addr` lies in this subnet.
    #[must_use]
    pub fn contains(self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(v4) & mask == u32::from(self.base) & mask
            }
            IpAddr::V6(_) => false,
        }
    }

    /// The address `host` places after the network address.
    pub(super) fn host(self, host: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + host)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// First host number handed to a replica: .0 is the network, .1 the gateway.
const FIRST_HOST: u32 = 2;
/// Last host number of a /16 (the next one is the broadcast address).
const LAST_HOST: u32 = (1 << 16) - 2;

/// Hands out host numbers of one subnet: lowest released first, then new ones in order.
#[derive(Debug, Clone)]
pub(super) struct HostPool {
    /// The next never-used host number.
    next: u32,
    /// Released host numbers, reused lowest first.
    free: BTreeSet<u32>,
}

impl Default for HostPool {
    fn default() -> Self {
        HostPool { next: FIRST_HOST, free: BTreeSet::new() }
    }
}

impl HostPool {
    /// How many more addresses the pool can hand out.
    pub(super) fn available(&self) -> usize {
        (LAST_HOST + 1 - self.next) as usize + self.free.len()
    }

    /// `n` host numbers, or None (and nothing taken) when fewer are left.
    pub(super) fn take(&mut self, n: usize) -> Option<Vec<u32>> {
        if n > self.available() {
            return None;
        }
        let mut hosts = Vec::with_capacity(n);
        while hosts.len() < n {
            match self.free.pop_first() {
                Some(h) => hosts.push(h),
                None => break,
            }
        }
        let rest = u32::try_from(n - hosts.len()).expect("at most a /16 of hosts");
        hosts.extend(self.next..self.next + rest);
        self.next += rest;
        Some(hosts)
    }

    /// Gives host numbers back.
    pub(super) fn release(&mut self, hosts: &[u32]) {
        self.free.extend(hosts.iter().copied());
    }
}
