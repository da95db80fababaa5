//! Worker discovery by DNS, for code running inside the task network.
