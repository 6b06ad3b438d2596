//! The blocking git operations, all through gix; the async adapter runs them on
//! `spawn_blocking` threads.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::config::tree::gitoxide;
use gix::protocol::transport;

use crate::error::{GitError, chain};

/// The message of the commit `prepare_local` makes; git stores it with a trailing newline.
pub const INITIAL_COMMIT_MESSAGE: &str = "Initial commit\n";

/// `git init` in `dir` (which exists and is empty) plus an empty "Initial commit" on `HEAD`.
///
/// Author and committer come from git configuration (environment, repository, global,
/// system) as git resolves them; the given name and email fill in whatever is missing.
/// Returns the new commit's id.
pub fn init_with_initial_commit(
    dir: &Path,
    fallback_name: &str,
    fallback_email: &str,
) -> Result<String, GitError> {
    let mut repo = gix::init(dir)?;
    {
        let mut config = repo.config_snapshot_mut();
        config.set_value(&gitoxide::Author::NAME_FALLBACK, fallback_name)?;
        config.set_value(&gitoxide::Author::EMAIL_FALLBACK, fallback_email)?;
        config.set_value(&gitoxide::Committer::NAME_FALLBACK, fallback_name)?;
        config.set_value(&gitoxide::Committer::EMAIL_FALLBACK, fallback_email)?;
        config.commit()?;
    }
    // gix knows the empty tree without storing it; git tools expect it in the object store.
    let tree = repo.write_object(gix::objs::Tree::empty())?.detach();
    let commit = repo.commit(
        "HEAD",
        INITIAL_COMMIT_MESSAGE,
        tree,
        gix::commit::NO_PARENT_IDS,
    )?;
    Ok(commit.to_string())
}

/// Whether `dest` (a git repository) has an `origin` remote whose fetch URL is `url`.
/// Returns the origin URL it has, if any, for error messages.
pub fn origin_url(dest: &Path) -> Result<Option<gix::Url>, GitError> {
    let repo = gix::open(dest)?;
    let url = match repo.try_find_remote("origin") {
        Some(remote) => remote?.url(gix::remote::Direction::Fetch).cloned(),
        None => None,
    };
    Ok(url)
}

/// Whether two spellings of a remote URL name the same repository.
pub fn same_url(existing: &gix::Url, wanted: &str) -> bool {
    if existing.to_bstring() == wanted.as_bytes().as_bstr() {
        return true;
    }
    match gix::url::parse(wanted.as_bytes().as_bstr()) {
        Ok(parsed) => parsed == *existing,
        Err(_) => false,
    }
}

/// Clones `url` into `dest` with a checked-out main worktree. `dest` must not exist or be
/// empty. On failure gix removes what it created when it created `dest`.
pub fn clone(url: &str, dest: &Path) -> Result<(), GitError> {
    let remote_err =
        |e: gix::Error| GitError::Remote(format!("failed to clone {url}: {}", chain(&e)));
    let interrupt = AtomicBool::new(false);
    let mut prepare = gix::prepare_clone(url, dest)
        .map_err(remote_err)?
        // A server has no terminal: ask credential helpers, never the user.
        .with_in_memory_config_overrides(["gitoxide.credentials.terminalPrompt=false"]);
    let (mut checkout, _outcome) = prepare
        .fetch_then_checkout(gix::progress::Discard, &interrupt)
        .map_err(remote_err)?;
    let (_repo, _outcome) = checkout
        .main_worktree(gix::progress::Discard, &interrupt)
        .map_err(|e| GitError::Other(format!("failed to check out {url}: {}", chain(&e))))?;
    Ok(())
}

/// Connects to `url` and lists its references, like `git ls-remote`, without fetching.
pub fn ls_remote(url: &str) -> Result<usize, GitError> {
    let fail =
        |e: gix::Error| GitError::Remote(format!("cannot list refs of {url}: {}", chain(&e)));
    let parsed = gix::url::parse(url.as_bytes().as_bstr())
        .map_err(|e| GitError::Remote(format!("invalid repository URL {url}: {e}")))?;
    if parsed.scheme == gix::url::Scheme::File {
        // `git upload-pack` reports a missing repository only on its stderr, which leaves
        // the handshake with a bare "failed to fill whole buffer"; say it plainly instead.
        let path = gix::path::from_bstr(parsed.path.as_bstr())
            .map_err(|e| GitError::Remote(format!("invalid repository path in {url}: {e}")))?;
        if let Err(e) = gix::open_opts(path.into_owned(), gix::open::Options::isolated()) {
            return Err(GitError::Remote(format!(
                "cannot list refs of {url}: not a git repository: {}",
                chain(&e)
            )));
        }
    }
    let mut conn = transport::client::blocking_io::connect::connect(
        url,
        transport::client::blocking_io::connect::Options::default(),
    )
    .map_err(fail)?;
    // Without credentials we only reach public repositories; asking for credentials
    // fails with a clear "authentication required" error instead of prompting.
    let mut handshake = gix::protocol::handshake(
        &mut conn,
        transport::Service::UploadPack,
        |_action| Ok(None),
        Vec::new(),
        &mut gix::progress::Discard,
    )
    .map_err(fail)?;
    let count = match handshake.refs.take() {
        Some(refs) => refs.len(),
        None => {
            let agent = (
                "agent",
                Some(format!("discobot/{}", env!("CARGO_PKG_VERSION"))),
            );
            gix::protocol::LsRefsCommand::new(None, &handshake.capabilities, agent)
                .invoke_blocking(&mut conn, &mut gix::progress::Discard, false)
                .map_err(fail)?
                .len()
        }
    };
    // Tell a stateful server (file://, ssh, git://) that we are done; errors here don't matter.
    gix::protocol::indicate_end_of_interaction(&mut conn, false).ok();
    Ok(count)
}
