//! SIGINT, SIGTERM and SIGHUP, listened for from the start so none is lost between phases.
//!
//! SIGHUP (the terminal closed, `tmux kill-session`) counts as an interrupt too: without it,
//! closing the terminal killed `atq run` with no cleanup at all. What an interrupt does is the
//! core's protocol ([`atq_core::run`]): the CLI only forwards each signal to an
//! [`Interrupt`](atq_core::Interrupt).

/// The interrupt signals the CLI reacts to.
pub struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening: from now on SIGINT, SIGTERM and SIGHUP no longer kill the process.
    pub fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the next SIGINT, SIGTERM or SIGHUP.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
