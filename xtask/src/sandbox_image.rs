//! `cargo xtask sandbox-image`: builds the sandbox image `discobot-sandbox:<version>`.
//!
//! The image is a base image plus git, bash, coreutils, ca-certificates, ripgrep and procps, with
//! our release `discobot-agent` binary as the container command.
//! No registry is reachable on our machines, so the default base, `discobot-base:bookworm`, is
//! made here when it is missing: `debootstrap --variant=minbase` into a temporary directory,
//! trimmed the way Debian's `-slim` images are, and loaded with `docker import`. Any other base
//! (say `debian:bookworm-slim`) is used if it is present locally (or can be pulled); when it lacks
//! git or ripgrep the Dockerfile installs them with apt.
//! The final image is built by the classic builder from a temporary context directory holding the
//! agent binary and a generated Dockerfile.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::services::{apt_install, can_manage_services, ensure_docker, on_path};
use crate::{cargo, command_line, deps, output, run, succeeds};

/// The base image made with debootstrap when no other is given.
const DEFAULT_BASE: &str = "discobot-base:bookworm";
/// Bases under this repository are ours to make (and remake with `--rebuild-base`).
const OWN_BASE_REPO: &str = "discobot-base:";
/// The sandbox image's repository; the tag is the workspace version.
const IMAGE_REPO: &str = "discobot-sandbox";
/// xtask inherits `[workspace.package] version` from the root Cargo.toml, so this is the
/// workspace version (cargo rebuilds xtask when it changes).
const VERSION: &str = env!("CARGO_PKG_VERSION");

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// What every sandbox needs besides the agent; `--include` of debootstrap.
const PACKAGES: &[&str] = &[
    "git",
    "bash",
    "coreutils",
    "ca-certificates",
    "ripgrep",
    "procps",
];
/// The agent's port (`DISCOBOT_PORT` default), exposed by the image.
const AGENT_PORT: u16 = 3002;
/// The image label the server's unused-image cleanup looks for.
const SANDBOX_LABEL: &str = "io.discobot.sandbox-image=true";
/// The binary and its place in the image.
const AGENT_BIN: &str = "discobot-agent";
const AGENT_PATH: &str = "/usr/local/bin/discobot-agent";

/// What is trimmed from the rootfs and kept out by dpkg afterwards: the path-excludes of
/// Debian's `-slim` images (docs except copyright files, man and info pages, locales).
const SLIM_EXCLUDES: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/groff",
    "usr/share/lintian",
    "usr/share/linda",
    "usr/share/locale",
];

const USAGE: &str = "usage: cargo xtask sandbox-image [--base IMAGE] [--tag TAG] [--rebuild-base]";

#[derive(Debug, PartialEq, Eq)]
struct Options {
    base: String,
    tag: String,
    rebuild_base: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        base: DEFAULT_BASE.to_owned(),
        tag: format!("{IMAGE_REPO}:{VERSION}"),
        rebuild_base: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || -> anyhow::Result<String> {
            let value = match &inline {
                Some(value) => value.clone(),
                None => args.next().cloned().unwrap_or_default(),
            };
            if value.is_empty() || value.starts_with("--") {
                bail!("`{flag}` needs a value\n{USAGE}");
            }
            Ok(value)
        };
        match flag {
            "--base" => options.base = value()?,
            "--tag" => options.tag = value()?,
            "--rebuild-base" if inline.is_none() => options.rebuild_base = true,
            _ => bail!("unexpected argument `{arg}` for `sandbox-image`\n{USAGE}"),
        }
    }
    Ok(options)
}

/// `cargo xtask sandbox-image`.
pub(crate) fn run_sandbox_image(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let total = Instant::now();
    ensure_docker()?;

    let base_took = ensure_base(&options)?;
    let has_tools = base_has_tools(&options.base);
    println!(
        "base {}: {}",
        options.base,
        if has_tools {
            "has git and ripgrep"
        } else {
            "lacks git or ripgrep; the Dockerfile installs them with apt"
        }
    );

    let agent_start = Instant::now();
    run(cargo().args(["build", "--release", "--package", "discobot-agent-bin"]))?;
    let agent = target_dir()?.join("release").join(AGENT_BIN);
    let agent_took = agent_start.elapsed();

    let build_start = Instant::now();
    let previous = image_id(&options.tag);
    let id = build_image(&options, !has_tools, &agent)?;
    let build_took = build_start.elapsed();
    if let Some(previous) = previous.filter(|previous| *previous != id) {
        // The tag moved on. Without --force, Docker keeps the old image while a container (even a
        // stopped one) or another tag uses it; the server's unused-image cleanup takes it later.
        let removed = succeeds(Command::new("docker").args(["image", "rm", &previous]));
        println!(
            "previous {} ({previous}): {}",
            options.tag,
            if removed {
                "removed"
            } else {
                "kept (a container or another tag uses it)"
            }
        );
    }
    let size: u64 = output(Command::new("docker").args([
        "image",
        "inspect",
        "--format",
        "{{.Size}}",
        &options.tag,
    ]))?
    .trim()
    .parse()
    .context("`docker image inspect` printed no size")?;

    println!();
    println!("image   {} ({id})", options.tag);
    println!("size    {}", megabytes(size));
    if let Some(took) = base_took {
        println!("base    made in {}", seconds(took));
    }
    println!("agent   release build in {}", seconds(agent_took));
    println!("image   built in {}", seconds(build_took));
    println!("total   {}", seconds(total.elapsed()));
    Ok(())
}

/// Makes sure the base exists; returns how long making it took, if it had to be made.
fn ensure_base(options: &Options) -> anyhow::Result<Option<Duration>> {
    let base = &options.base;
    let ours = base.starts_with(OWN_BASE_REPO);
    if options.rebuild_base && !ours {
        bail!(
            "--rebuild-base only remakes our own debootstrap bases (`{OWN_BASE_REPO}*`), not `{base}`"
        );
    }
    if !options.rebuild_base && image_exists(base) {
        println!("base {base}: present");
        return Ok(None);
    }
    if !ours {
        // Where a registry answers, a missing foreign base is pulled; here it fails at once.
        if run(Command::new("docker").args(["pull", base])).is_ok() {
            return Ok(None);
        }
        bail!(
            "base image `{base}` is not present and cannot be pulled: load it with `docker load` \
             or `docker import`, or leave out --base to make {DEFAULT_BASE} with debootstrap"
        );
    }
    let start = Instant::now();
    make_base(base)?;
    let took = start.elapsed();
    println!("base {base}: made in {}", seconds(took));
    Ok(Some(took))
}

pub(crate) fn image_exists(image: &str) -> bool {
    succeeds(Command::new("docker").args(["image", "inspect", image]))
}

/// The id of `image`, if it exists.
fn image_id(image: &str) -> Option<String> {
    output(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", image]))
        .ok()
        .map(|id| id.trim().to_owned())
}

/// Whether `base` already has git and ripgrep on its PATH.
fn base_has_tools(base: &str) -> bool {
    succeeds(Command::new("docker").args([
        "run",
        "--rm",
        base,
        "sh",
        "-c",
        "command -v git && command -v rg",
    ]))
}

/// debootstrap → trim → `tar | docker import` as `base`.
fn make_base(base: &str) -> anyhow::Result<()> {
    if !can_manage_services() {
        bail!("making the base image `{base}` needs debootstrap, which needs root on Debian");
    }
    if !on_path("debootstrap") {
        apt_install(&["debootstrap"])?;
    }
    let rootfs = TempDir::new("discobot-base-rootfs")?;
    let root = rootfs
        .path()
        .to_str()
        .context("temporary path is not UTF-8")?;
    let include = format!("--include={}", PACKAGES.join(","));
    let debootstrap =
        run(Command::new("debootstrap").args(["--variant=minbase", &include, SUITE, root, MIRROR]));
    // debootstrap mounts /proc and /sys in the chroot while it works, and may leave them on
    // failure: they must be gone before the tree is archived or deleted.
    unmount_under(rootfs.path())?;
    debootstrap?;
    trim(rootfs.path())?;
    import(rootfs.path(), base)
}

/// Removes what a container does not need, as Debian's `-slim` images do, and keeps dpkg from
/// putting it back.
fn trim(root: &Path) -> anyhow::Result<()> {
    let before = tree_size(root);
    // Package lists and downloaded .debs: `apt-get update` fetches fresh ones.
    clear_dir(&root.join("var/lib/apt/lists"), |_| true)?;
    clear_dir(&root.join("var/cache/apt"), |_| true)?;
    clear_dir(&root.join("var/log"), |_| true)?;
    for dir in SLIM_EXCLUDES {
        // Licences stay: every package's copyright file is kept.
        clear_dir(&root.join(dir), |path| {
            path.file_name().is_none_or(|name| name != "copyright")
        })?;
    }
    let dpkg_cfg = root.join("etc/dpkg/dpkg.cfg.d");
    fs::create_dir_all(&dpkg_cfg)?;
    let mut excludes =
        String::from("# Written by `cargo xtask sandbox-image`: keep the image slim.\n");
    for dir in SLIM_EXCLUDES {
        excludes.push_str(&format!("path-exclude /{dir}/*\n"));
    }
    excludes.push_str("path-include /usr/share/doc/*/copyright\n");
    fs::write(dpkg_cfg.join("01-discobot-slim"), excludes)?;
    // Point releases and security updates for whatever the sandbox installs later.
    fs::write(
        root.join("etc/apt/sources.list"),
        format!(
            "deb {MIRROR} {SUITE} main\n\
             deb {MIRROR} {SUITE}-updates main\n\
             deb http://deb.debian.org/debian-security {SUITE}-security main\n"
        ),
    )?;
    // debootstrap copies these from the host; Docker provides its own in every container.
    for file in ["etc/resolv.conf", "etc/hostname"] {
        let path = root.join(file);
        if path.is_file() {
            fs::write(&path, "")?;
        }
    }
    println!(
        "trimmed the rootfs from {} to {}",
        megabytes(before),
        megabytes(tree_size(root))
    );
    Ok(())
}

/// Deletes, depth first, every file under `dir` for which `remove` holds and every directory
/// left empty below it; `dir` itself stays.
fn clear_dir(dir: &Path, remove: impl Fn(&Path) -> bool + Copy) -> anyhow::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("could not read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            clear_dir(&path, remove)?;
            // Fails (and is left alone) when something was kept inside.
            let _ = fs::remove_dir(&path);
        } else if remove(&path) {
            fs::remove_file(&path)
                .with_context(|| format!("could not remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// Bytes of the regular files under `dir` (symlinks not followed).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => tree_size(&entry.path()),
            Ok(meta) if meta.is_file() => meta.len(),
            _ => 0,
        })
        .sum()
}

/// `tar -C <root> -c . | docker import --change … - <base>`.
fn import(root: &Path, base: &str) -> anyhow::Result<()> {
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(root)
        .args(["--numeric-owner", "--one-file-system", "-c", "."])
        .stdout(Stdio::piped());
    let mut import = Command::new("docker");
    import.args([
        "import",
        "--change",
        "ENV LANG=C.UTF-8",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        r#"CMD ["/bin/bash"]"#,
        "-",
        base,
    ]);
    println!("$ {} | {}", command_line(&tar), command_line(&import));
    let mut tar = tar.spawn().context("could not start tar")?;
    let archive = tar.stdout.take().context("tar has no stdout")?;
    let imported = import
        .stdin(Stdio::from(archive))
        .stderr(Stdio::inherit())
        .output()
        .context("could not start `docker import`")?;
    let tar_status = tar.wait()?;
    if !tar_status.success() {
        bail!("tar of the rootfs failed ({tar_status})");
    }
    if !imported.status.success() {
        bail!("`docker import` failed ({})", imported.status);
    }
    println!(
        "imported {base} ({})",
        String::from_utf8_lossy(&imported.stdout).trim()
    );
    Ok(())
}

/// The Dockerfile of the sandbox image on `base`; `install_tools` when the base lacks them.
fn dockerfile(base: &str, install_tools: bool) -> String {
    let mut file = format!("FROM {base}\n");
    if install_tools {
        file.push_str(&format!(
            "RUN apt-get update \\\n \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {} \\\n \
             && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb\n",
            PACKAGES.join(" ")
        ));
    }
    // Root for now: the sandbox user comes with the terminal and the agent's tools.
    file.push_str(&format!(
        "RUN mkdir -p /.workspace /.data/workspace\n\
         COPY {AGENT_BIN} {AGENT_PATH}\n\
         LABEL {SANDBOX_LABEL} io.discobot.version={VERSION}\n\
         EXPOSE {AGENT_PORT}\n\
         WORKDIR /.data/workspace\n\
         CMD [\"{AGENT_PATH}\"]\n"
    ));
    file
}

/// Builds the image from a temporary context (the agent binary and the Dockerfile); returns its id.
fn build_image(options: &Options, install_tools: bool, agent: &Path) -> anyhow::Result<String> {
    let context = TempDir::new("discobot-sandbox-context")?;
    let bin = context.path().join(AGENT_BIN);
    fs::copy(agent, &bin).with_context(|| format!("could not copy {}", agent.display()))?;
    if on_path("strip") {
        // The release profile keeps the symbol table; the image does not need it.
        run(Command::new("strip").arg(&bin))?;
    }
    let dockerfile = dockerfile(&options.base, install_tools);
    fs::write(context.path().join("Dockerfile"), &dockerfile)?;
    print!("Dockerfile:\n{dockerfile}");
    let iidfile = context.path().join("image-id");
    run(Command::new("docker")
        // The classic builder: engine 20.10 here and no buildx plugin for BuildKit.
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--force-rm", "--tag", &options.tag, "--iidfile"])
        .arg(&iidfile)
        .arg(context.path()))?;
    let id = fs::read_to_string(&iidfile).context("`docker build` wrote no image id")?;
    Ok(id.trim().to_owned())
}

/// Cargo's target directory (it may be shared and moved with `CARGO_TARGET_DIR`).
fn target_dir() -> anyhow::Result<PathBuf> {
    let metadata = deps::metadata()?;
    let dir = metadata["target_directory"]
        .as_str()
        .context("`cargo metadata` has no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// Unmounts (lazily, deepest first) every mount point under `dir`.
fn unmount_under(dir: &Path) -> anyhow::Result<()> {
    for point in mounts_under(dir)?.iter().rev() {
        run(Command::new("umount").arg("--lazy").arg(point))?;
    }
    Ok(())
}

/// The mount points under `dir`, in mount order, from `/proc/self/mounts`.
fn mounts_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mounts =
        fs::read_to_string("/proc/self/mounts").context("could not read the mount table")?;
    Ok(mount_points_under(&mounts, dir))
}

fn mount_points_under(mounts: &str, dir: &Path) -> Vec<PathBuf> {
    mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        // The table escapes spaces and the like as octal (`\040`).
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// A directory under the system temp dir, removed on drop unless something is mounted in it.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("could not create {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Never recurse into a mounted /proc or /sys of a failed debootstrap.
        match mounts_under(&self.0) {
            Ok(mounts) if mounts.is_empty() => {
                if let Err(err) = fs::remove_dir_all(&self.0) {
                    eprintln!("warning: could not remove {}: {err}", self.0.display());
                }
            }
            _ => eprintln!(
                "warning: left {} in place: something is still mounted under it",
                self.0.display()
            ),
        }
    }
}

fn seconds(took: Duration) -> String {
    format!("{:.1} s", took.as_secs_f64())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_options() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.base, "discobot-base:bookworm");
        assert_eq!(defaults.tag, format!("discobot-sandbox:{VERSION}"));
        assert!(!defaults.rebuild_base);

        let given = parse(&args(&[
            "--base",
            "debian:bookworm-slim",
            "--tag=mine:1",
            "--rebuild-base",
        ]))
        .unwrap();
        assert_eq!(
            given,
            Options {
                base: "debian:bookworm-slim".into(),
                tag: "mine:1".into(),
                rebuild_base: true,
            }
        );

        assert!(parse(&args(&["--base"])).is_err());
        assert!(parse(&args(&["--base", "--tag", "x"])).is_err());
        assert!(parse(&args(&["--rebuild-base=yes"])).is_err());
        assert!(parse(&args(&["--frobnicate"])).is_err());
    }

    #[test]
    fn version_is_the_workspace_version() {
        let manifest = fs::read_to_string(crate::project_root().join("Cargo.toml")).unwrap();
        let package = manifest.split("[workspace.package]").nth(1).unwrap();
        assert!(package.contains(&format!("version = \"{VERSION}\"")));
    }

    #[test]
    fn dockerfile_installs_tools_only_when_missing() {
        let with_tools = dockerfile("discobot-base:bookworm", false);
        assert!(with_tools.starts_with("FROM discobot-base:bookworm\n"));
        assert!(!with_tools.contains("apt-get"));
        for line in [
            "COPY discobot-agent /usr/local/bin/discobot-agent",
            "LABEL io.discobot.sandbox-image=true",
            "EXPOSE 3002",
            "WORKDIR /.data/workspace",
            r#"CMD ["/usr/local/bin/discobot-agent"]"#,
        ] {
            assert!(
                with_tools.contains(line),
                "missing {line:?} in\n{with_tools}"
            );
        }
        let without = dockerfile("debian:bookworm-slim", true);
        assert!(without.contains("apt-get install -y --no-install-recommends git bash"));
        assert!(without.contains("ripgrep"));
    }

    #[test]
    fn finds_mount_points_under_a_dir() {
        let table = "proc /proc proc rw 0 0\n\
                     proc /tmp/root/proc proc rw 0 0\n\
                     sysfs /tmp/root/sys sysfs rw 0 0\n\
                     tmpfs /tmp/rootless tmpfs rw 0 0\n\
                     tmpfs /tmp/root/a\\040b tmpfs rw 0 0\n";
        assert_eq!(
            mount_points_under(table, Path::new("/tmp/root")),
            vec![
                PathBuf::from("/tmp/root/proc"),
                PathBuf::from("/tmp/root/sys"),
                PathBuf::from("/tmp/root/a b"),
            ]
        );
    }

    #[test]
    fn clear_dir_keeps_what_it_is_told_to() {
        let tmp = TempDir::new("xtask-clear-dir-test").unwrap();
        let doc = tmp.path().join("doc");
        fs::create_dir_all(doc.join("git")).unwrap();
        fs::create_dir_all(doc.join("bash/examples")).unwrap();
        fs::write(doc.join("git/copyright"), "GPL").unwrap();
        fs::write(doc.join("git/changelog.gz"), "x").unwrap();
        fs::write(doc.join("bash/examples/a"), "x").unwrap();
        clear_dir(&doc, |path| {
            path.file_name().is_none_or(|name| name != "copyright")
        })
        .unwrap();
        assert!(doc.join("git/copyright").is_file());
        assert!(!doc.join("git/changelog.gz").exists());
        assert!(!doc.join("bash").exists());
        assert!(doc.is_dir());
    }
}
