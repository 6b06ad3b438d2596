//! The agent's half of a replay, for tests and the bench: builds the `ReplayBundle` of
//! `parent..head` from a repository with the git CLI (`rev-list`, `cat-file`, `diff-tree`),
//! the way the sandbox agent serves it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::Engine as _;
use discobot_core::replay::{
    ChangeStatus, REPLAY_BUNDLE_VERSION, ReplayBundle, ReplayChange, ReplayCommit,
};

/// The bundle of the first-parent commits of `parent..head` in `repo`.
pub fn bundle_from_range(repo: &Path, parent: &str, head: &str) -> ReplayBundle {
    let parent = git_text(repo, &["rev-parse", &format!("{parent}^{{commit}}")]);
    let range = format!("{parent}..{head}");
    let shas = git_text(repo, &["rev-list", "--reverse", "--first-parent", &range]);
    let mut objects = CatFile::start(repo);
    let commits = shas
        .lines()
        .map(|sha| replay_commit(repo, &mut objects, sha))
        .collect();
    ReplayBundle {
        version: REPLAY_BUNDLE_VERSION,
        parent,
        commits,
    }
}

fn replay_commit(repo: &Path, objects: &mut CatFile, sha: &str) -> ReplayCommit {
    let raw = String::from_utf8(objects.get(sha)).expect("UTF-8 commit");
    let (headers, message) = raw.split_once("\n\n").expect("commit has a message part");
    let header = |name: &str| {
        headers
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("commit {sha} has no {name}"))
    };
    let (author_name, author_email, author_date) = split_signature(header("author"));
    let (committer_name, committer_email, committer_date) = split_signature(header("committer"));

    // `-z --raw`: `:<old mode> <new mode> <old id> <new id> <status>\0<path>\0[<new path>\0]`.
    let diff = git_bytes(
        repo,
        &[
            "diff-tree",
            "-r",
            "-z",
            "-M",
            "--raw",
            "--no-commit-id",
            &format!("{sha}^"),
            sha,
        ],
    );
    let mut fields = diff
        .split(|b| *b == 0)
        .map(|f| String::from_utf8(f.to_vec()).unwrap());
    let mut changes = Vec::new();
    while let Some(meta) = fields.next() {
        if meta.is_empty() {
            continue;
        }
        let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let (new_mode, old_id, new_id, status) = (parts[1], parts[2], parts[3], parts[4]);
        let first = fields.next().expect("path");
        let (status, old_path, path) = match &status[..1] {
            "A" => (ChangeStatus::Added, None, first),
            "D" => (ChangeStatus::Deleted, None, first),
            "M" | "T" => (ChangeStatus::Modified, None, first),
            "R" => (
                ChangeStatus::Renamed,
                Some(first),
                fields.next().expect("new path"),
            ),
            other => panic!("unexpected diff status {other}"),
        };
        let content = (status != ChangeStatus::Deleted).then(|| objects.get(new_id));
        changes.push(ReplayChange {
            path,
            old_path,
            status,
            mode: (status != ChangeStatus::Deleted).then(|| new_mode.to_string()),
            binary: content
                .as_ref()
                .is_some_and(|c| c.iter().take(8000).any(|b| *b == 0)),
            content: content.map(|c| base64::engine::general_purpose::STANDARD.encode(c)),
            previous_blob: (status != ChangeStatus::Added).then(|| old_id.to_string()),
        });
    }
    ReplayCommit {
        sha: sha.to_string(),
        message: message.to_string(),
        author_name,
        author_email,
        author_date,
        committer_name,
        committer_email,
        committer_date,
        changes,
    }
}

/// `Name <email> 1700000000 +0200` → name, email, raw date.
fn split_signature(value: &str) -> (String, String, String) {
    let close = value.rfind("> ").expect("signature has an email");
    let open = value[..close].rfind('<').expect("signature has an email");
    let name = value[..open].strip_suffix(' ').unwrap_or(&value[..open]);
    (
        name.to_string(),
        value[open + 1..close].to_string(),
        value[close + 2..].to_string(),
    )
}

/// One `git cat-file --batch` process for every object read.
struct CatFile {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl CatFile {
    fn start(repo: &Path) -> CatFile {
        let mut child = Command::new("git")
            .current_dir(repo)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("git cat-file starts");
        let input = child.stdin.take().expect("piped stdin");
        let output = BufReader::new(child.stdout.take().expect("piped stdout"));
        CatFile {
            child,
            input,
            output,
        }
    }

    fn get(&mut self, id: &str) -> Vec<u8> {
        writeln!(self.input, "{id}").expect("cat-file accepts input");
        self.input.flush().expect("cat-file accepts input");
        let mut header = String::new();
        self.output
            .read_line(&mut header)
            .expect("cat-file answers");
        let size: usize = header
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("cat-file: unexpected header {header:?}"));
        let mut data = vec![0; size + 1];
        self.output
            .read_exact(&mut data)
            .expect("cat-file sends the object");
        data.truncate(size);
        data
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn git_bytes(repo: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .current_dir(repo)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn git_text(repo: &Path, args: &[&str]) -> String {
    String::from_utf8(git_bytes(repo, args))
        .expect("UTF-8 output")
        .trim_end()
        .to_string()
}
