//! `EventLog`: the project event log, the bus between server replicas.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use discobot_core::Result;
use discobot_core::events::{Event, NewEvent};
use discobot_core::ids::{EventId, ProjectId};
use discobot_core::ports::EventLog;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::Store;
use crate::entity::project_events;
use crate::error::{DbResultExt, StoreError};
use crate::store::ts;

fn event_from_row(row: project_events::Model) -> Result<Event, StoreError> {
    Ok(Event {
        id: EventId::new(row.id),
        seq: row.seq,
        project_id: ProjectId::new(row.project_id),
        event_type: row.event_type,
        data: serde_json::from_str(&row.data).map_err(|e| StoreError::corrupt("event data", e))?,
        created_at: row.created_at,
    })
}

fn events_from_rows(rows: Vec<project_events::Model>) -> Result<Vec<Event>> {
    Ok(rows
        .into_iter()
        .map(event_from_row)
        .collect::<Result<_, _>>()?)
}

#[async_trait]
impl EventLog for Store {
    async fn append_event(&self, event: &NewEvent) -> Result<Event> {
        let created_at = ts(event.created_at);
        let data = serde_json::to_string(&event.data)
            .map_err(|e| StoreError::other(format!("cannot encode event data: {e}")))?;
        // RETURNING works on both backends (SQLite ≥ 3.35), so the sequence number comes back
        // with the insert itself.
        let statement = self.statement(
            "INSERT INTO project_events (id, project_id, type, data, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING seq",
            [
                event.id.as_str().into(),
                event.project_id.as_str().into(),
                event.event_type.as_str().into(),
                data.into(),
                created_at.into(),
            ],
        );
        let row = self
            .writer
            .query_one_raw(statement)
            .await
            .conflict_as("event id already exists")?
            .ok_or_else(|| StoreError::other("INSERT … RETURNING gave no row"))?;
        let seq: i64 = row.try_get("", "seq").db()?;
        Ok(Event {
            id: event.id.clone(),
            seq,
            project_id: event.project_id.clone(),
            event_type: event.event_type.clone(),
            data: event.data.clone(),
            created_at,
        })
    }

    async fn events_after_seq(&self, after_seq: i64, limit: u64) -> Result<Vec<Event>> {
        let rows = project_events::Entity::find()
            .filter(project_events::Column::Seq.gt(after_seq))
            .order_by_asc(project_events::Column::Seq)
            .limit(limit)
            .all(&self.reader)
            .await
            .db()?;
        events_from_rows(rows)
    }

    async fn max_project_event_seq(&self, project: &ProjectId) -> Result<i64> {
        let statement = self.statement(
            "SELECT COALESCE(MAX(seq), 0) AS max_seq FROM project_events WHERE project_id = $1",
            [project.as_str().into()],
        );
        let row = self.reader.query_one_raw(statement).await.db()?;
        match row {
            Some(row) => Ok(row.try_get::<i64>("", "max_seq").db()?),
            None => Ok(0),
        }
    }

    async fn max_event_seq(&self) -> Result<i64> {
        let statement = self.statement(
            "SELECT COALESCE(MAX(seq), 0) AS max_seq FROM project_events",
            [],
        );
        let row = self.reader.query_one_raw(statement).await.db()?;
        let max = match row {
            Some(row) => row.try_get::<i64>("", "max_seq").db()?,
            None => 0,
        };
        Ok(max)
    }

    async fn get_event(&self, id: &str) -> Result<Option<Event>> {
        let row = project_events::Entity::find()
            .filter(project_events::Column::Id.eq(id))
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(event_from_row).transpose()?)
    }

    async fn project_events_since(
        &self,
        project: &ProjectId,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Event>> {
        let mut query = project_events::Entity::find()
            .filter(project_events::Column::ProjectId.eq(project.as_str()));
        if let Some(since) = since {
            query = query.filter(project_events::Column::CreatedAt.gt(ts(since)));
        }
        let rows = query
            .order_by_asc(project_events::Column::CreatedAt)
            .order_by_asc(project_events::Column::Seq)
            .all(&self.reader)
            .await
            .db()?;
        events_from_rows(rows)
    }

    async fn purge_events_before(&self, before: DateTime<Utc>) -> Result<u64> {
        let result = project_events::Entity::delete_many()
            .filter(project_events::Column::CreatedAt.lt(ts(before)))
            .exec(&self.writer)
            .await
            .db()?;
        Ok(result.rows_affected)
    }
}
