//! The services and tools the tests need (PostgreSQL, Docker, Node.js), installed and started
//! idempotently.
//!
//! Both setups assume what our CI machines are: Debian 12, root, nothing running yet (see the
//! notes on the machines in PRODUCT.md). Each step checks first and only acts when needed, so
//! running them again on a machine that is already set up changes nothing.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{output, run, succeeds};

/// The role, password and database the tests use.
const ROLE: &str = "discobot";
const PASSWORD: &str = "discobot";
const TEST_DATABASE: &str = "discobot_test";

/// Whether we may install and start system services here: root on Debian.
pub(crate) fn can_manage_services() -> bool {
    Path::new("/etc/debian_version").exists()
        && output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// Installs and starts PostgreSQL, creates the test role and database, and returns their URL.
pub(crate) fn ensure_postgres() -> anyhow::Result<String> {
    if !can_manage_services() {
        bail!("cannot set up PostgreSQL: that needs root on Debian");
    }
    if !on_path("pg_ctlcluster") {
        apt_install(&["postgresql"])?;
    }
    let cluster = cluster()?;
    if !succeeds(Command::new("pg_ctlcluster").args([&cluster.version, "main", "status"])) {
        let started = run(Command::new("pg_ctlcluster").args([&cluster.version, "main", "start"]));
        // A concurrent start (or one that raced us) reports "already running": fine.
        if started.is_err()
            && !succeeds(Command::new("pg_ctlcluster").args([&cluster.version, "main", "status"]))
        {
            started?;
        }
    }
    let port = cluster.port.to_string();
    wait_until(
        Duration::from_secs(30),
        "PostgreSQL to accept connections",
        || succeeds(Command::new("pg_isready").args(["-q", "-h", "127.0.0.1", "-p", &port])),
    )?;

    let role_exists =
        psql_as_postgres(&format!("SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'"))?;
    let verb = if role_exists.trim() == "1" {
        "ALTER"
    } else {
        "CREATE"
    };
    // CREATEDB: the tests and the bench create databases of their own.
    psql_as_postgres(&format!(
        "{verb} ROLE {ROLE} WITH LOGIN CREATEDB PASSWORD '{PASSWORD}'"
    ))?;
    let database_exists = psql_as_postgres(&format!(
        "SELECT 1 FROM pg_database WHERE datname = '{TEST_DATABASE}'"
    ))?;
    if database_exists.trim() != "1" {
        psql_as_postgres(&format!("CREATE DATABASE {TEST_DATABASE} OWNER {ROLE}"))?;
    }
    Ok(format!(
        "postgres://{ROLE}:{PASSWORD}@127.0.0.1:{}/{TEST_DATABASE}",
        cluster.port
    ))
}

struct Cluster {
    version: String,
    port: u16,
}

/// The newest installed PostgreSQL's `main` cluster, created if the package did not create it.
fn cluster() -> anyhow::Result<Cluster> {
    let newest = |dir: &str| -> Option<String> {
        let mut versions: Vec<(u32, String)> = fs::read_dir(dir)
            .ok()?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                Some((name.parse().ok()?, name))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, name)| name)
    };
    let version = match newest("/etc/postgresql") {
        Some(version) if Path::new(&format!("/etc/postgresql/{version}/main")).is_dir() => version,
        _ => {
            let version = newest("/usr/lib/postgresql")
                .context("PostgreSQL is installed but /usr/lib/postgresql has no version")?;
            run(Command::new("pg_createcluster").args([&version, "main"]))?;
            version
        }
    };
    // `pg_lsclusters -h`: "15 main 5432 online postgres /var/lib/postgresql/15/main <log>".
    let clusters = output(Command::new("pg_lsclusters").arg("-h"))?;
    let port = clusters
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.len() > 2 && fields[0] == version && fields[1] == "main")
        .and_then(|fields| fields[2].parse().ok())
        .with_context(|| format!("no port for cluster {version}/main in `pg_lsclusters`"))?;
    Ok(Cluster { version, port })
}

/// Runs one SQL statement as the `postgres` superuser and returns its unaligned output.
pub(crate) fn psql_as_postgres(sql: &str) -> anyhow::Result<String> {
    let psql = format!(
        "psql -X -v ON_ERROR_STOP=1 -tAc {}",
        crate::shell_quote(sql)
    );
    // In `/` so that psql, as `postgres`, can read its working directory.
    output(
        Command::new("su")
            .args(["postgres", "-c", &psql])
            .current_dir("/"),
    )
}

/// Installs and starts the Docker engine unless `docker version` already answers.
pub(crate) fn ensure_docker() -> anyhow::Result<()> {
    let docker_answers = || succeeds(Command::new("docker").arg("version"));
    if docker_answers() {
        return Ok(());
    }
    if !can_manage_services() {
        bail!("Docker does not answer, and starting it needs root on Debian");
    }
    if !on_path("dockerd") {
        apt_install(&["docker.io"])?;
    }
    if !docker_answers() {
        let log_path = "/var/log/dockerd.log";
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("could not open {log_path}"))?;
        println!("$ setsid dockerd >>{log_path} 2>&1 &");
        // `setsid`: the daemon outlives us and is not hit by a Ctrl-C meant for CI.
        Command::new("setsid")
            .arg("dockerd")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("could not start dockerd")?;
        wait_until(Duration::from_secs(60), "dockerd to answer", docker_answers)
            .with_context(|| format!("see {log_path}"))?;
    }
    Ok(())
}

/// Makes sure `node` and `npm` are on `PATH` (Debian's `nodejs` and `npm` packages when one is
/// missing), then installs the packages of the Node client in `client_dir` with `npm ci` unless
/// its `node_modules` is newer than its lock file.
pub(crate) fn ensure_node_client(client_dir: &Path) -> anyhow::Result<()> {
    if !on_path("node") || !on_path("npm") {
        if !can_manage_services() {
            bail!(
                "node and npm are needed for the AI SDK client test, and installing them needs \
                 root on Debian; install Node.js 20 or newer, or set DISCOBOT_SKIP_NODE=1 to \
                 skip that test"
            );
        }
        apt_install(&["nodejs", "npm"])?;
    }
    println!(
        "node {}",
        output(Command::new("node").arg("--version"))?.trim()
    );
    let lock = client_dir.join("package-lock.json");
    // npm writes this copy of the lock file last when it installs, so its age is the install's.
    let installed = client_dir.join("node_modules/.package-lock.json");
    let modified = |path: &Path| fs::metadata(path).and_then(|meta| meta.modified()).ok();
    let lock_time = modified(&lock).with_context(|| format!("{} is missing", lock.display()))?;
    match modified(&installed) {
        Some(install_time) if install_time >= lock_time => {
            println!("{}: node_modules is up to date", client_dir.display());
            Ok(())
        }
        _ => run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(client_dir)),
    }
}

/// `apt-get install -y <packages>`, running `apt-get update` first only when there are no package
/// lists yet, or when the install fails without a fresh update.
pub(crate) fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let have_lists = fs::read_dir("/var/lib/apt/lists").is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().ends_with("_Packages"))
    });
    let update = || run(Command::new("apt-get").args(["update", "-q"]));
    let install = || {
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q"])
            .args(packages))
    };
    if !have_lists {
        update()?;
        return install();
    }
    if install().is_err() {
        update()?;
        install()?;
    }
    Ok(())
}

/// Whether an executable `name` is on `PATH`.
pub(crate) fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// Polls `ready` every 100 ms until it returns true, or fails after `timeout`.
fn wait_until(
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        sleep(Duration::from_millis(100));
    }
    Ok(())
}
