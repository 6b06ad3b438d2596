//! The event log: sequence numbers, replay by seq and by time, purge.

use chrono::{DateTime, Duration, Utc};
use discobot_core::ErrorKind;
use discobot_core::events::{NewEvent, event_id_for};
use discobot_core::ids::ProjectId;
use discobot_core::ports::EventLog;
use serde_json::json;

use crate::common::{Ctx, now};
use crate::store_test;

store_test!(events_append_replay_purge);

fn event(project: &ProjectId, at: DateTime<Utc>, n: u32) -> NewEvent {
    NewEvent {
        id: event_id_for(at),
        project_id: project.clone(),
        event_type: "session_updated".into(),
        data: json!({"sessionId": format!("s{n}"), "status": "ready", "nested": {"n": n}}),
        created_at: at,
    }
}

async fn events_append_replay_purge(ctx: Ctx) {
    let store = &ctx.store;
    assert_eq!(store.max_event_seq().await.unwrap(), 0);
    assert!(store.events_after_seq(0, 10).await.unwrap().is_empty());

    let local = ProjectId::local();
    let other = ProjectId::new("other");
    let t0 = now() - Duration::hours(1);
    let mut appended = Vec::new();
    for n in 0..5u32 {
        let project = if n == 2 { &other } else { &local };
        let e = store
            .append_event(&event(project, t0 + Duration::seconds(n.into()), n))
            .await
            .unwrap();
        appended.push(e);
    }
    for pair in appended.windows(2) {
        assert!(
            pair[1].seq > pair[0].seq,
            "seq increases with insertion order"
        );
    }
    assert_eq!(appended[3].data["nested"]["n"], 3);
    assert_eq!(store.max_event_seq().await.unwrap(), appended[4].seq);

    let dup = store.append_event(&event(&local, t0, 0)).await.unwrap_err();
    assert_eq!(dup.kind, ErrorKind::Conflict);

    // Every project's events by seq, in batches.
    let batch = store.events_after_seq(0, 2).await.unwrap();
    assert_eq!(batch, appended[..2].to_vec());
    let rest = store.events_after_seq(batch[1].seq, 100).await.unwrap();
    assert_eq!(rest, appended[2..].to_vec());

    assert_eq!(
        store
            .get_event(appended[2].id.as_str())
            .await
            .unwrap()
            .as_ref(),
        Some(&appended[2])
    );
    assert!(store.get_event("nope").await.unwrap().is_none());

    // A project's events strictly after a time.
    let all_local = store.project_events_since(&local, None).await.unwrap();
    let expected: Vec<_> = appended
        .iter()
        .filter(|e| e.project_id == local)
        .cloned()
        .collect();
    assert_eq!(all_local, expected);
    let since = store
        .project_events_since(&local, Some(appended[1].created_at))
        .await
        .unwrap();
    assert_eq!(since, vec![appended[3].clone(), appended[4].clone()]);
    assert!(
        store
            .project_events_since(&local, Some(now()))
            .await
            .unwrap()
            .is_empty()
    );

    // Events of one instant come back in seq order.
    let same_time = t0 + Duration::seconds(100);
    let mut tied = Vec::new();
    for n in 10..13u32 {
        let mut e = event(&local, same_time, n);
        e.id = discobot_core::ids::EventId::new(format!("tied-{n}"));
        tied.push(store.append_event(&e).await.unwrap());
    }
    let since = store
        .project_events_since(&local, Some(t0 + Duration::seconds(50)))
        .await
        .unwrap();
    assert_eq!(since, tied);

    // Purge removes what is older than the cutoff only.
    let purged = store
        .purge_events_before(t0 + Duration::seconds(2))
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert!(
        store
            .get_event(appended[0].id.as_str())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_event(appended[2].id.as_str())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.purge_events_before(t0).await.unwrap(), 0);
    // The highest seq stays where it was: numbers are never handed out twice.
    let next = store.append_event(&event(&local, now(), 99)).await.unwrap();
    assert!(next.seq > tied[2].seq);
}
