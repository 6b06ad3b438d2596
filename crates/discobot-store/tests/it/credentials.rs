//! Credentials, session assignments and settings: CRUD, the one-credential-per-provider
//! rule, deletes that take assignments along, replacing a session's assignments, the
//! insert-if-absent of settings (also from a second replica), and rows that hold only
//! sealed bytes, read straight from the table.

use chrono::Duration;
use discobot_core::ErrorKind;
use discobot_core::credentials::{
    AuthType, Credential, CredentialData, EnvVar, SessionCredentialAssignment,
    SessionCredentialUse, Visibility,
};
use discobot_core::ids::{CredentialId, ProjectId, SessionId};
use discobot_core::model::Project;
use discobot_core::ports::{CredentialRepo, ProjectRepo, SessionRepo, SettingsRepo, WorkspaceRepo};
use discobot_core::secrets::{Sealer, Secret};
use sea_orm::{ConnectionTrait, Statement};

use crate::common::{Ctx, now, session, workspace};
use crate::store_test;

store_test!(
    credential_crud,
    one_credential_per_provider,
    assignments_replace_and_delete_with_credential,
    settings_insert_if_absent,
    rows_hold_no_plaintext,
    project_delete_removes_credentials,
);

const SECRET: &str = "sk-store-test-0123456789-very-secret";

fn sealer() -> Sealer {
    Sealer::new(&[42u8; 32])
}

fn credential(project: &ProjectId, provider: &str, secret: &str) -> Credential {
    let id = CredentialId::generate();
    let data = CredentialData::EnvVars(vec![EnvVar {
        key: "ANTHROPIC_API_KEY".into(),
        value: Secret::new(secret),
    }]);
    let t = now();
    Credential {
        sealed: Some(sealer().seal(&data.to_json(), id.as_str().as_bytes())),
        id,
        project_id: project.clone(),
        provider: provider.to_owned(),
        name: format!("{provider} key"),
        description: Some("for tests".into()),
        auth_type: AuthType::ApiKey,
        is_configured: true,
        inactive: false,
        visibility: Visibility {
            tools: true,
            hooks: true,
            ..Visibility::NONE
        },
        created_at: t,
        updated_at: t,
    }
}

async fn credential_crud(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    assert!(store.list_credentials(&local).await.unwrap().is_empty());

    let first = credential(&local, "anthropic", SECRET);
    store.insert_credential(&first).await.unwrap();
    let mut second = credential(&local, "custom:1", "other");
    second.created_at = first.created_at + Duration::seconds(1);
    second.updated_at = second.created_at;
    store.insert_credential(&second).await.unwrap();

    let listed = store.list_credentials(&local).await.unwrap();
    assert_eq!(listed, vec![first.clone(), second.clone()], "oldest first");
    assert_eq!(
        store.get_credential(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    assert_eq!(
        store
            .get_credential_by_provider(&local, "custom:1")
            .await
            .unwrap()
            .as_ref(),
        Some(&second)
    );
    assert!(
        store
            .get_credential_by_provider(&ProjectId::new("elsewhere"), "anthropic")
            .await
            .unwrap()
            .is_none()
    );

    // Update writes everything but id, project and creation time.
    let mut changed = first.clone();
    changed.name = "renamed".into();
    changed.description = None;
    changed.inactive = true;
    changed.auth_type = AuthType::Id;
    changed.visibility = Visibility {
        console: true,
        services: true,
        ..Visibility::NONE
    };
    changed.sealed = Some(sealer().seal(b"{\"envVars\":[]}", first.id.as_str().as_bytes()));
    changed.updated_at = first.updated_at + Duration::seconds(5);
    store.update_credential(&changed).await.unwrap();
    let read = store.get_credential(&first.id).await.unwrap().unwrap();
    assert_eq!(read, changed);
    let plaintext = sealer()
        .open(read.sealed.as_ref().unwrap(), first.id.as_str().as_bytes())
        .unwrap();
    assert_eq!(plaintext, b"{\"envVars\":[]}");

    let mut missing = credential(&local, "openai", "x");
    missing.id = CredentialId::new("nope");
    let error = store.update_credential(&missing).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);

    assert!(store.delete_credential(&first.id).await.unwrap());
    assert!(!store.delete_credential(&first.id).await.unwrap());
    assert!(store.get_credential(&first.id).await.unwrap().is_none());
    assert_eq!(store.list_credentials(&local).await.unwrap(), vec![second]);
}

async fn one_credential_per_provider(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    store
        .insert_credential(&credential(&local, "openai", "a"))
        .await
        .unwrap();
    let error = store
        .insert_credential(&credential(&local, "openai", "b"))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict);

    // Another project may have its own.
    let t = now();
    let other = Project {
        id: ProjectId::generate(),
        name: "Other".into(),
        slug: "other-1".into(),
        created_at: t,
        updated_at: t,
    };
    store
        .create_project(&other, &discobot_core::ids::UserId::anonymous())
        .await
        .unwrap();
    store
        .insert_credential(&credential(&other.id, "openai", "c"))
        .await
        .unwrap();
    // An update may not move a credential onto a taken provider either.
    let mut tavily = credential(&local, "tavily", "t");
    store.insert_credential(&tavily).await.unwrap();
    tavily.provider = "openai".into();
    let error = store.update_credential(&tavily).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict);
}

fn assignment(
    session: &SessionId,
    credential: &CredentialId,
    env_var: Option<&str>,
) -> SessionCredentialAssignment {
    let t = now();
    SessionCredentialAssignment {
        id: uuid::Uuid::new_v4().to_string(),
        session_id: session.clone(),
        credential_id: credential.clone(),
        session_credential_id: format!("cred_s_{}", uuid::Uuid::new_v4().simple()),
        env_var: env_var.map(str::to_owned),
        source_env_var: env_var.map(|_| "ANTHROPIC_API_KEY".to_owned()),
        visibility: Visibility {
            tools: true,
            console: true,
            services: false,
            hooks: true,
        },
        uses: vec![SessionCredentialUse {
            id: "use_s_abc".into(),
            description: "Deploy".into(),
            created_at: Some(t),
            last_used_at: None,
            last_used_tool_call_id: Some("call_1".into()),
        }],
        created_at: t,
        updated_at: t,
    }
}

async fn assignments_replace_and_delete_with_credential(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    let t = now();
    let ws = workspace(&local, "/tmp/creds", t);
    store.create_workspace(&ws).await.unwrap();
    let s1 = session("cred-s1", &ws, t);
    let s2 = session("cred-s2", &ws, t);
    store.create_session(&s1).await.unwrap();
    store.create_session(&s2).await.unwrap();
    let a = credential(&local, "anthropic", "a");
    let b = credential(&local, "custom:b", "b");
    store.insert_credential(&a).await.unwrap();
    store.insert_credential(&b).await.unwrap();

    assert!(
        store
            .list_session_assignments(&s1.id)
            .await
            .unwrap()
            .is_empty()
    );
    let first = vec![
        assignment(&s1.id, &a.id, Some("RENAMED")),
        assignment(&s1.id, &b.id, None),
    ];
    store
        .replace_session_assignments(&s1.id, &first)
        .await
        .unwrap();
    store
        .replace_session_assignments(&s2.id, &[assignment(&s2.id, &a.id, None)])
        .await
        .unwrap();
    let mut read = store.list_session_assignments(&s1.id).await.unwrap();
    read.sort_by(|x, y| x.id.cmp(&y.id));
    let mut expected = first.clone();
    expected.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(read, expected, "every field round-trips");

    // Replacing drops what is not listed.
    let second = vec![assignment(&s1.id, &b.id, None)];
    store
        .replace_session_assignments(&s1.id, &second)
        .await
        .unwrap();
    assert_eq!(
        store.list_session_assignments(&s1.id).await.unwrap(),
        second
    );
    // The same credential twice in one session is refused, and nothing changes.
    let twice = vec![
        assignment(&s1.id, &a.id, None),
        assignment(&s1.id, &a.id, None),
    ];
    let error = store
        .replace_session_assignments(&s1.id, &twice)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict);
    assert_eq!(
        store.list_session_assignments(&s1.id).await.unwrap(),
        second
    );

    // Deleting a credential removes its assignments in every session.
    assert!(store.delete_credential(&b.id).await.unwrap());
    assert!(
        store
            .list_session_assignments(&s1.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_session_assignments(&s2.id).await.unwrap().len(),
        1
    );
    // Clearing works too.
    store
        .replace_session_assignments(&s2.id, &[])
        .await
        .unwrap();
    assert!(
        store
            .list_session_assignments(&s2.id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn settings_insert_if_absent(ctx: Ctx) {
    let store = &ctx.store;
    assert!(store.get_setting("k").await.unwrap().is_none());
    let stored = store
        .insert_setting_if_absent("k", &[1, 2, 3], now())
        .await
        .unwrap();
    assert_eq!(stored, vec![1, 2, 3]);
    // A later insert (here from another replica) keeps the first value.
    let replica = ctx.second_store().await;
    let stored = replica
        .insert_setting_if_absent("k", &[9, 9], now())
        .await
        .unwrap();
    assert_eq!(stored, vec![1, 2, 3]);
    assert_eq!(store.get_setting("k").await.unwrap(), Some(vec![1, 2, 3]));
    // Racing inserts all agree on one value.
    let mut handles = Vec::new();
    for i in 0..8u8 {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            replica.clone()
        };
        handles.push(tokio::spawn(async move {
            store
                .insert_setting_if_absent("race", &[i], now())
                .await
                .unwrap()
        }));
    }
    let mut values = Vec::new();
    for handle in handles {
        values.push(handle.await.unwrap());
    }
    assert!(values.windows(2).all(|w| w[0] == w[1]), "{values:?}");
}

async fn rows_hold_no_plaintext(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    let stored = credential(&local, "anthropic", SECRET);
    store.insert_credential(&stored).await.unwrap();

    let raw = ctx.raw_connection().await;
    let rows = raw
        .query_all_raw(Statement::from_string(
            raw.get_database_backend(),
            "SELECT * FROM credentials",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let blob: Vec<u8> = rows[0].try_get("", "encrypted_data").unwrap();
    assert!(blob.len() > SECRET.len());
    assert!(
        !blob.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the sealed column holds the plaintext"
    );
    // No text column holds it either.
    for column in [
        "id",
        "project_id",
        "provider",
        "name",
        "description",
        "auth_type",
    ] {
        let value: Option<String> = rows[0].try_get("", column).unwrap();
        assert!(!value.unwrap_or_default().contains(SECRET), "{column}");
    }
    // What is stored opens with the key and the credential id, and only with both.
    let plaintext = sealer().open(&blob, stored.id.as_str().as_bytes()).unwrap();
    let data = CredentialData::from_json("anthropic", AuthType::ApiKey, &plaintext).unwrap();
    let CredentialData::EnvVars(vars) = data else {
        panic!("env vars expected")
    };
    assert_eq!(vars[0].value.expose(), SECRET);
    assert!(sealer().open(&blob, b"another-id").is_err());
    assert!(
        Sealer::new(&[1u8; 32])
            .open(&blob, stored.id.as_str().as_bytes())
            .is_err()
    );
    raw.close().await.unwrap();
}

async fn project_delete_removes_credentials(ctx: Ctx) {
    let store = &ctx.store;
    let t = now();
    let doomed = Project {
        id: ProjectId::generate(),
        name: "Doomed".into(),
        slug: "doomed-cred".into(),
        created_at: t,
        updated_at: t,
    };
    store
        .create_project(&doomed, &discobot_core::ids::UserId::anonymous())
        .await
        .unwrap();
    let ws = workspace(&doomed.id, "/tmp/doomed-cred", t);
    store.create_workspace(&ws).await.unwrap();
    let s = session("doomed-cred-s", &ws, t);
    store.create_session(&s).await.unwrap();
    let c = credential(&doomed.id, "openai", "x");
    store.insert_credential(&c).await.unwrap();
    store
        .replace_session_assignments(&s.id, &[assignment(&s.id, &c.id, None)])
        .await
        .unwrap();
    let kept = credential(&ProjectId::local(), "openai", "y");
    store.insert_credential(&kept).await.unwrap();

    store.delete_project(&doomed.id).await.unwrap();
    assert!(store.list_credentials(&doomed.id).await.unwrap().is_empty());
    assert!(store.get_credential(&c.id).await.unwrap().is_none());
    assert!(
        store
            .list_session_assignments(&s.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.get_credential(&kept.id).await.unwrap().is_some());
}
