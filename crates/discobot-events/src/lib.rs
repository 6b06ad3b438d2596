//! Background delivery: the event broker, the event purge loop and the job dispatcher.
#![doc = include_str!("../README.md")]

mod broker;
mod dispatcher;

pub use broker::{Broker, BrokerConfig, BrokerSubscriber, Subscription, purge_loop};
pub use dispatcher::{Dispatcher, DispatcherConfig, JobWakeup};

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `task` every `interval` (first after one interval) until `shutdown`.
pub async fn every<F, Fut>(interval: Duration, shutdown: CancellationToken, mut task: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => task().await,
        }
    }
}
