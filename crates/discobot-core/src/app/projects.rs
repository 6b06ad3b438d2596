//! Project use cases: list, create, read, rename, delete.

use chrono::Utc;
use rand::Rng;
use serde_json::json;

use super::{App, Principal, ProjectAccess, check_text, required};
use crate::error::{Error, Result};
use crate::events::EventPayload;
use crate::ids::ProjectId;
use crate::jobs::JobType;
use crate::model::Project;

impl App {
    pub async fn list_projects(&self, principal: &Principal) -> Result<Vec<Project>> {
        self.ports
            .projects
            .list_projects_for_user(&principal.user_id)
            .await
    }

    /// Creates a project owned by the caller; its slug is derived from the name plus a
    /// random suffix so that equal names never clash.
    pub async fn create_project(&self, principal: &Principal, name: &str) -> Result<Project> {
        let name = required(name, "Name is required")?;
        check_text(&name, "name", 200)?;
        let now = Utc::now();
        let project = Project {
            id: ProjectId::generate(),
            slug: slug_for(&name),
            name,
            created_at: now,
            updated_at: now,
        };
        self.ports
            .projects
            .create_project(&project, &principal.user_id)
            .await?;
        self.publish_project(&project, false).await;
        Ok(project)
    }

    pub async fn get_project(&self, access: &ProjectAccess) -> Result<Project> {
        self.ports
            .projects
            .get_project(&access.project_id)
            .await?
            .ok_or_else(|| Error::not_found("Project not found"))
    }

    pub async fn update_project(&self, access: &ProjectAccess, name: &str) -> Result<Project> {
        access.require_admin()?;
        let name = required(name, "Name is required")?;
        check_text(&name, "name", 200)?;
        let mut project = self.get_project(access).await?;
        project.name = name;
        project.updated_at = Utc::now();
        self.ports.projects.update_project(&project).await?;
        self.publish_project(&project, false).await;
        Ok(project)
    }

    /// Deletes the project's rows, then queues removal of its sessions' sandboxes.
    pub async fn delete_project(&self, access: &ProjectAccess) -> Result<()> {
        access.require_owner()?;
        if access.project_id == ProjectId::local() {
            // Anonymous mode has no way to make another project, so losing `local` would
            // leave the user with nothing to work in.
            return Err(Error::conflict("the default project cannot be deleted"));
        }
        let project = self.get_project(access).await?;
        let sessions = self
            .ports
            .sessions
            .list_sessions(&access.project_id)
            .await?;
        self.publish_project(&project, true).await;
        self.ports
            .projects
            .delete_project(&access.project_id)
            .await?;
        for session in sessions {
            self.enqueue(
                JobType::SessionSandboxDelete,
                session.id.as_str(),
                json!({"sessionId": session.id.as_str()}),
                None,
            )
            .await?;
        }
        Ok(())
    }

    async fn publish_project(&self, project: &Project, deleted: bool) {
        let payload = EventPayload::ProjectUpdated {
            project_id: project.id.clone(),
            name: project.name.clone(),
            deleted,
        };
        self.publish(&project.id, payload).await;
    }
}

/// `My Project!` → `my-project-1a2b3c4d`.
fn slug_for(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    let suffix: u32 = rand::rng().random();
    if slug.is_empty() {
        format!("project-{suffix:08x}")
    } else {
        format!("{slug}-{suffix:08x}")
    }
}

#[cfg(test)]
mod tests {
    use super::slug_for;

    #[test]
    fn slugs() {
        let slug = slug_for("  My  Project!! ");
        assert!(slug.starts_with("my-project-"), "{slug}");
        assert_eq!(slug.len(), "my-project-".len() + 8);
        assert!(slug_for("ÜÜ").starts_with("project-"));
    }
}

/// Where a project event stream starts its replay.
#[derive(Clone, Debug, PartialEq)]
pub enum EventCursor {
    /// No replay: live events only.
    Live,
    /// Events created after the event with this id; an unknown id replays everything.
    After(String),
    /// Events created after this time.
    Since(chrono::DateTime<Utc>),
}

impl App {
    /// The stored events a new subscriber should see before live ones.
    pub async fn event_history(
        &self,
        access: &ProjectAccess,
        cursor: &EventCursor,
    ) -> Result<Vec<crate::events::Event>> {
        let log = &self.ports.events;
        match cursor {
            EventCursor::Live => Ok(Vec::new()),
            EventCursor::Since(since) => {
                log.project_events_since(&access.project_id, Some(*since))
                    .await
            }
            EventCursor::After(id) => match log.get_event(id).await? {
                Some(event) if event.project_id == access.project_id => {
                    // Events created in the same instant as the reference one follow it in
                    // sequence order; keep those and drop the reference itself.
                    let mut events = log
                        .project_events_since(
                            &access.project_id,
                            Some(event.created_at - chrono::Duration::nanoseconds(1)),
                        )
                        .await?;
                    events.retain(|candidate| candidate.seq > event.seq);
                    Ok(events)
                }
                _ => log.project_events_since(&access.project_id, None).await,
            },
        }
    }
}
