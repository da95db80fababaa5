//! `atq-discover SERVICE N [TIMEOUT_SECS]`: waits until `tasks.SERVICE` resolves to N
//! addresses, prints them one per line (sorted) and exits 0; prints the error and exits 1.
//!
//! The DNS discovery integration test runs it inside a swarm container on the task network.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let service = args.next().expect("usage: atq-discover SERVICE N [TIMEOUT_SECS]");
    let n: usize = args.next().and_then(|n| n.parse().ok()).expect("N must be a number");
    let timeout = args.next().and_then(|t| t.parse().ok()).unwrap_or(30);
    match atq_core::discovery::wait_for_tasks(&service, n, std::time::Duration::from_secs(timeout)).await {
        Ok(addresses) => {
            for address in addresses {
                println!("{address}");
            }
        }
        Err(e) => {
            eprintln!("atq-discover: {e}");
            std::process::exit(1);
        }
    }
}
