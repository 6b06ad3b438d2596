//! Background delivery: the event broker, the event purge loop and the job dispatcher.
#![doc = include_str!("../README.md")]

mod broker;
mod dispatcher;

pub use broker::{Broker, BrokerConfig, BrokerSubscriber, Subscription, purge_loop};
pub use dispatcher::{Dispatcher, DispatcherConfig, JobWakeup};
