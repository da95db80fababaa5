//! Addresses of a fake engine's networks.

use std::collections::BTreeSet;

use crate::cluster::subnet::Subnet;

/// First host number handed to a replica: .0 is the network, .1 the gateway.
const FIRST_HOST: u32 = 2;

/// Hands out host numbers of one subnet: lowest released first, then new ones in order.
#[derive(Debug, Clone)]
pub(super) struct HostPool {
    /// The next never-used host number.
    next: u32,
    /// The last host number (the next one is the broadcast address).
    last: u32,
    /// Released host numbers, reused lowest first.
    free: BTreeSet<u32>,
}

impl HostPool {
    /// The host numbers of `subnet`: all but the network address, the gateway and broadcast.
    pub(super) fn of(subnet: Subnet) -> Self {
        let last = u32::try_from(subnet.size().saturating_sub(2)).unwrap_or(u32::MAX);
        HostPool { next: FIRST_HOST, last, free: BTreeSet::new() }
    }

    /// How many more addresses the pool can hand out.
    pub(super) fn available(&self) -> usize {
        (self.last + 1).saturating_sub(self.next) as usize + self.free.len()
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
        let rest = u32::try_from(n - hosts.len()).expect("checked against the subnet's size");
        hosts.extend(self.next..self.next + rest);
        self.next += rest;
        Some(hosts)
    }

    /// Gives host numbers back.
    pub(super) fn release(&mut self, hosts: &[u32]) {
        self.free.extend(hosts.iter().copied());
    }
}
