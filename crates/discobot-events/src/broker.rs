//! The event broker: polls the event log and fans events out to per-project subscribers.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use discobot_core::events::Event;
use discobot_core::ids::ProjectId;
use discobot_core::ports::{EventLog, EventNotifier, EventStream, EventSubscriber};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// Settings of the broker.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// How often the log is read when nothing local wakes the poller (other replicas).
    pub poll_interval: Duration,
    /// How many events a subscriber may have queued before it is closed.
    pub subscriber_buffer: usize,
    /// How long a gap in sequence numbers is waited for before it is skipped.
    pub gap_timeout: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            poll_interval: Duration::from_millis(250),
            subscriber_buffer: 256,
            gap_timeout: Duration::from_secs(5),
        }
    }
}

/// Delivers stored events to live subscribers.
pub struct Broker {
    log: Arc<dyn EventLog>,
    config: BrokerConfig,
    subscribers: Mutex<HashMap<ProjectId, Vec<Subscriber>>>,
    wake: Notify,
    next_subscriber: AtomicU64,
}

struct Subscriber {
    id: u64,
    sender: mpsc::Sender<Event>,
}

/// A live stream of one project's events; dropping it unsubscribes.
pub struct Subscription {
    receiver: mpsc::Receiver<Event>,
    broker: Weak<Broker>,
    project: ProjectId,
    id: u64,
}

impl Subscription {
    /// The next event, or `None` when the broker closed the subscription (shutdown, or the
    /// subscriber fell too far behind and must replay).
    pub async fn recv(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }
}

#[async_trait::async_trait]
impl EventStream for Subscription {
    async fn next_event(&mut self) -> Option<Event> {
        self.recv().await
    }
}

/// Subscribes through the core port; wraps an `Arc<Broker>` because subscriptions keep a
/// weak reference back to it.
pub struct BrokerSubscriber(pub Arc<Broker>);

impl EventSubscriber for BrokerSubscriber {
    fn subscribe(&self, project: &ProjectId) -> Box<dyn EventStream> {
        Box::new(self.0.subscribe(project))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(broker) = self.broker.upgrade() {
            broker.unsubscribe(&self.project, self.id);
        }
    }
}

impl Broker {
    pub fn new(log: Arc<dyn EventLog>, config: BrokerConfig) -> Arc<Self> {
        Arc::new(Broker {
            log,
            config,
            subscribers: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            next_subscriber: AtomicU64::new(1),
        })
    }

    pub fn subscribe(self: &Arc<Self>, project: &ProjectId) -> Subscription {
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(self.config.subscriber_buffer);
        self.lock()
            .entry(project.clone())
            .or_default()
            .push(Subscriber { id, sender });
        Subscription {
            receiver,
            broker: Arc::downgrade(self),
            project: project.clone(),
            id,
        }
    }

    /// Number of live subscribers, for status pages and tests.
    pub fn subscriber_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Closes every subscription (their streams end).
    pub fn close_all(&self) {
        self.lock().clear();
    }

    fn unsubscribe(&self, project: &ProjectId, id: u64) {
        let mut subscribers = self.lock();
        if let Some(list) = subscribers.get_mut(project) {
            list.retain(|subscriber| subscriber.id != id);
            if list.is_empty() {
                subscribers.remove(project);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, Vec<Subscriber>>> {
        // A panic while holding this lock leaves the map consistent (every operation is a
        // single insert or retain), so a poisoned lock is safe to keep using.
        self.subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends one event to its project's subscribers, closing any whose buffer is full.
    fn deliver(&self, event: &Event) {
        let mut subscribers = self.lock();
        let Some(list) = subscribers.get_mut(&event.project_id) else {
            return;
        };
        list.retain(
            |subscriber| match subscriber.sender.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        project.id = %event.project_id,
                        subscriber.id = subscriber.id,
                        "event subscriber fell behind; closing it so that it replays"
                    );
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
        );
    }

    /// Polls the log until `shutdown`, then closes every subscription. Events stored before
    /// the poller reads the log's end are not delivered live: a server should rather read
    /// it before it accepts subscribers and call [`Broker::run_from`].
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let watermark = loop {
            match self.log.max_event_seq().await {
                Ok(seq) => break seq,
                Err(error) => {
                    tracing::error!(%error, "cannot read the event log; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        self.run_from(watermark, shutdown).await;
    }

    /// Like `run`, delivering every event after sequence number `watermark` (the log's end
    /// when the server started), so that a subscriber that came before the poller's first
    /// read still gets every later event.
    pub async fn run_from(self: Arc<Self>, watermark: i64, shutdown: CancellationToken) {
        let mut cursor = Cursor::new(watermark);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
            if let Err(error) = self.poll_once(&mut cursor).await {
                tracing::error!(%error, "failed to read new events");
            }
        }
        self.close_all();
    }

    async fn poll_once(&self, cursor: &mut Cursor) -> discobot_core::Result<()> {
        loop {
            let events = self.log.events_after_seq(cursor.watermark, 500).await?;
            let full_batch = events.len() == 500;
            for event in &events {
                if cursor.mark(event.seq) {
                    self.deliver(event);
                }
            }
            cursor.advance(Instant::now(), self.config.gap_timeout);
            if !full_batch {
                return Ok(());
            }
        }
    }
}

impl EventNotifier for Broker {
    fn notify(&self) {
        self.wake.notify_one();
    }
}

/// Tracks which sequence numbers were delivered. `watermark` is the highest seq below which
/// everything was delivered (or given up on); seqs above it are remembered individually, so
/// an event that commits late, filling a gap, is still delivered exactly once.
struct Cursor {
    watermark: i64,
    delivered: BTreeSet<i64>,
    gap_since: Option<Instant>,
}

impl Cursor {
    fn new(watermark: i64) -> Self {
        Cursor {
            watermark,
            delivered: BTreeSet::new(),
            gap_since: None,
        }
    }

    /// Records `seq`; returns whether it is new.
    fn mark(&mut self, seq: i64) -> bool {
        seq > self.watermark && self.delivered.insert(seq)
    }

    fn advance(&mut self, now: Instant, gap_timeout: Duration) {
        while self.delivered.remove(&(self.watermark + 1)) {
            self.watermark += 1;
        }
        match self.delivered.first().copied() {
            None => self.gap_since = None,
            Some(next) => {
                let since = *self.gap_since.get_or_insert(now);
                if now.duration_since(since) >= gap_timeout {
                    // The missing seqs belong to transactions that rolled back.
                    self.watermark = next - 1;
                    self.gap_since = None;
                    self.advance(now, gap_timeout);
                }
            }
        }
    }
}

/// Deletes events older than `retention` every `interval` until `shutdown`.
pub async fn purge_loop(
    log: Arc<dyn EventLog>,
    retention: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let cutoff = chrono::Duration::from_std(retention).map(|retention| Utc::now() - retention);
        if let Ok(cutoff) = cutoff {
            match log.purge_events_before(cutoff).await {
                Ok(0) => {}
                Ok(n_events) => tracing::info!(n_events, "purged old events"),
                Err(error) => tracing::error!(%error, "failed to purge old events"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_waits_for_gaps_then_skips() {
        let start = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut cursor = Cursor::new(10);
        assert!(cursor.mark(11));
        assert!(cursor.mark(13));
        cursor.advance(start, timeout);
        assert_eq!(cursor.watermark, 11);
        // 12 commits late: delivered once, and the watermark catches up.
        assert!(cursor.mark(12));
        assert!(!cursor.mark(12));
        cursor.advance(start, timeout);
        assert_eq!(cursor.watermark, 13);
        // 14 never comes: after the timeout it is skipped.
        assert!(cursor.mark(15));
        cursor.advance(start, timeout);
        assert_eq!(cursor.watermark, 13);
        cursor.advance(start + timeout, timeout);
        assert_eq!(cursor.watermark, 15);
        assert!(
            !cursor.mark(14),
            "a seq below the watermark is not delivered again"
        );
    }
}
