//! `cargo xtask deps`: checks from `cargo metadata` which crate depends on which.
//!
//! [`RULES`] is the whole policy, one row per workspace crate.
//! A crate may depend on a workspace crate, or on one of the [`GATED`] external crates, only if its
//! row lists it; it may never depend on the external crates its row bans.
//! Normal and build dependencies are checked in full.
//! Dev-dependencies are checked for workspace edges only (a row may allow extra ones for tests);
//! external dev-dependencies are free, so `discobot-core` may test with a tokio runtime.
//! A workspace crate without a row is itself a violation: a new crate is an architecture change.

use std::collections::BTreeSet;
use std::fmt;

use anyhow::{Context, bail};
use serde_json::Value;

/// The workspace crates, and the external crates only some crates may use.
pub(crate) enum Uses {
    /// Anything: the binaries and the end-to-end tests wire everything together.
    Anything,
    /// Only these workspace crates and [`GATED`] external crates.
    Only(&'static [&'static str]),
}

/// What one workspace crate may depend on.
pub(crate) struct Rule {
    /// Package name.
    pub(crate) krate: &'static str,
    /// Workspace crates and [`GATED`] external crates it may depend on.
    pub(crate) uses: Uses,
    /// Workspace crates it may additionally use as dev-dependencies.
    pub(crate) dev_also: &'static [&'static str],
    /// External crates it must never depend on (normal or build), beyond the gated ones.
    pub(crate) bans: &'static [&'static str],
    /// Why, printed with every violation of the row.
    pub(crate) why: &'static str,
}

/// External crates that only the crates whose row lists them may depend on.
pub(crate) const GATED: &[&str] = &[
    "sea-orm",
    "sea-orm-migration",
    "sqlx",
    "bollard",
    "gix",
    "oauth2",
    "openidconnect",
    "axum",
    "hyper",
    "tower-http",
];

const CORE: &str = "discobot-core";
const AGENT_API: &str = "discobot-agent-api";

/// The layering of the workspace (see `docs/ARCHITECTURE.md` and PRODUCT.md's crate map).
#[rustfmt::skip]
pub(crate) const RULES: &[Rule] = &[
    Rule { krate: CORE, uses: Uses::Only(&[]), dev_also: &[],
           bans: &["tokio", "reqwest", "tower", "pty-process"],
           why: "core is the domain: no workspace deps, no IO, no runtime, spawns nothing" },
    // Adapters: siblings over core, never each other, never http, never the web stack.
    Rule { krate: "discobot-store", uses: Uses::Only(&[CORE, "discobot-migrations", "sea-orm", "sea-orm-migration", "sqlx"]),
           dev_also: &["discobot-migrations"], bans: &[],
           why: "adapter: core, plus discobot-migrations which it runs on connect; the one adapter that knows the database" },
    Rule { krate: "discobot-sandbox", uses: Uses::Only(&[CORE, "discobot-agent-api", "bollard"]), dev_also: &[], bans: &[],
           why: "adapter: core, plus the agent protocol's secret hashing; the one crate that talks to Docker" },
    Rule { krate: "discobot-git", uses: Uses::Only(&[CORE, "gix"]), dev_also: &[], bans: &[],
           why: "adapter: core only; the one crate that uses gix" },
    Rule { krate: "discobot-auth", uses: Uses::Only(&[CORE, "oauth2", "openidconnect"]), dev_also: &[], bans: &[],
           why: "adapter: core only; the one crate that knows OAuth and OIDC" },
    Rule { krate: "discobot-chat-proxy", uses: Uses::Only(&[CORE, AGENT_API]), dev_also: &[], bans: &[],
           why: "adapter: core and the agent API wire types only" },
    Rule { krate: "discobot-events", uses: Uses::Only(&[CORE]), dev_also: &[], bans: &[],
           why: "adapter: core only" },
    Rule { krate: "discobot-http", uses: Uses::Only(&[CORE, AGENT_API, "axum", "hyper", "tower-http"]),
           dev_also: &[], bans: &[],
           why: "http reaches adapters only through core's port traits" },
    Rule { krate: "discobot-migrations", uses: Uses::Only(&["sea-orm", "sea-orm-migration", "sqlx"]),
           dev_also: &[], bans: &[],
           why: "migrations are append-only SQL history and know no workspace crate" },
    // The agent, which runs inside each sandbox.
    Rule { krate: AGENT_API, uses: Uses::Only(&[]), dev_also: &[], bans: &[],
           why: "the agent API wire types depend on no workspace crate" },
    Rule { krate: "discobot-agent", uses: Uses::Only(&[AGENT_API, CORE, "axum", "hyper", "tower-http"]),
           dev_also: &["discobot-fake-llm"], bans: &[],
           why: "the agent knows its wire types and the domain, nothing of the server" },
    // Test support.
    Rule { krate: "discobot-fake-llm", uses: Uses::Only(&["axum", "hyper"]), dev_also: &[], bans: &[],
           why: "test support: a fake of the LLM vendors' HTTP APIs, no product crates" },
    // Edges: they wire everything.
    Rule { krate: "discobot-server", uses: Uses::Anything, dev_also: &[], bans: &[], why: "binary" },
    Rule { krate: "discobot-agent-bin", uses: Uses::Anything, dev_also: &[], bans: &[], why: "binary" },
    Rule { krate: "discobot-tests", uses: Uses::Anything, dev_also: &[], bans: &[], why: "end-to-end tests" },
    Rule { krate: "xtask", uses: Uses::Only(&[]), dev_also: &[], bans: &[],
           why: "xtask builds without product code" },
];

/// One edge the rules forbid, or a crate they do not know.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) krate: String,
    /// `None` for a crate without a rule.
    pub(crate) dep: Option<(String, &'static str)>,
    pub(crate) message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dep {
            Some((dep, kind)) => write!(f, "{} -> {dep} ({kind}): {}", self.krate, self.message),
            None => write!(f, "{}: {}", self.krate, self.message),
        }
    }
}

/// `cargo xtask deps`.
pub(crate) fn run() -> anyhow::Result<()> {
    let metadata = metadata()?;
    let violations = check(&metadata)?;
    if violations.is_empty() {
        println!("deps: ok ({} rules)", RULES.len());
        return Ok(());
    }
    for violation in &violations {
        eprintln!("deps: {violation}");
    }
    bail!(
        "{} dependency rule violation(s); the rules are RULES in xtask/src/deps.rs",
        violations.len()
    )
}

/// `cargo metadata --format-version 1 --no-deps` of the workspace.
pub(crate) fn metadata() -> anyhow::Result<Value> {
    let stdout =
        crate::output(crate::cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    serde_json::from_str(&stdout).context("`cargo metadata` printed invalid JSON")
}

/// Every violation of [`RULES`] in `metadata` (the output of `cargo metadata --no-deps`).
pub(crate) fn check(metadata: &Value) -> anyhow::Result<Vec<Violation>> {
    let packages = metadata["packages"]
        .as_array()
        .context("`cargo metadata` has no `packages` array")?;
    let members: BTreeSet<&str> = packages
        .iter()
        .filter_map(|package| package["name"].as_str())
        .collect();

    let mut violations = Vec::new();
    for package in packages {
        let krate = package["name"]
            .as_str()
            .context("a package without a name")?;
        let Some(rule) = RULES.iter().find(|rule| rule.krate == krate) else {
            violations.push(Violation {
                krate: krate.to_owned(),
                dep: None,
                message: "no rule for this workspace crate; add one to RULES in xtask/src/deps.rs"
                    .to_owned(),
            });
            continue;
        };
        let deps = package["dependencies"]
            .as_array()
            .with_context(|| format!("package `{krate}` has no `dependencies` array"))?;
        for dep in deps {
            let name = dep["name"]
                .as_str()
                .with_context(|| format!("a dependency of `{krate}` without a name"))?;
            let kind = match dep["kind"].as_str() {
                None => "normal",
                Some("build") => "build",
                Some("dev") => "dev",
                Some(other) => bail!("unknown dependency kind `{other}` in `{krate}`"),
            };
            if name == krate {
                continue;
            }
            let in_workspace = members.contains(name);
            if let Some(message) = judge(rule, name, kind, in_workspace) {
                violations.push(Violation {
                    krate: krate.to_owned(),
                    dep: Some((name.to_owned(), kind)),
                    message,
                });
            }
        }
    }
    Ok(violations)
}

/// Why `rule.krate` may not have the dependency `dep` of `kind`, if it may not.
fn judge(rule: &Rule, dep: &str, kind: &str, in_workspace: bool) -> Option<String> {
    let Uses::Only(uses) = rule.uses else {
        return None;
    };
    let listed = uses.contains(&dep);
    if kind == "dev" {
        if in_workspace && !listed && !rule.dev_also.contains(&dep) {
            return Some(format!(
                "not an allowed workspace dependency ({})",
                rule.why
            ));
        }
        return None;
    }
    if rule.bans.contains(&dep) {
        return Some(format!("banned ({})", rule.why));
    }
    if in_workspace && !listed {
        return Some(format!(
            "not an allowed workspace dependency ({})",
            rule.why
        ));
    }
    if GATED.contains(&dep) && !listed {
        return Some(format!("only some crates may use `{dep}` ({})", rule.why));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A package as `cargo metadata` prints it, trimmed to what the checker reads.
    fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Value {
        let deps: Vec<Value> = deps
            .iter()
            .map(|(dep, kind)| serde_json::json!({ "name": dep, "kind": kind, "req": "*" }))
            .collect();
        serde_json::json!({ "name": name, "version": "0.1.0", "dependencies": deps })
    }

    fn metadata(packages: Vec<Value>) -> Value {
        serde_json::json!({ "packages": packages, "workspace_members": [], "version": 1 })
    }

    fn clean_graph() -> Vec<Value> {
        vec![
            package(CORE, &[("thiserror", None), ("tokio", Some("dev"))]),
            package(
                "discobot-store",
                &[
                    (CORE, None),
                    ("sea-orm", None),
                    ("discobot-migrations", Some("dev")),
                ],
            ),
            package("discobot-migrations", &[("sea-orm-migration", None)]),
            package("discobot-http", &[(CORE, None), ("axum", None)]),
            package(
                "discobot-server",
                &[
                    (CORE, None),
                    ("discobot-store", None),
                    ("discobot-http", None),
                    ("discobot-migrations", None),
                    ("sea-orm", None),
                ],
            ),
            package("xtask", &[("anyhow", None), ("reqwest", None)]),
        ]
    }

    #[test]
    fn clean_graph_passes() {
        let violations = check(&metadata(clean_graph())).unwrap();
        assert_eq!(violations, vec![]);
    }

    #[test]
    fn violations_are_detected() {
        let mut packages = clean_graph();
        packages.push(package(
            "discobot-git",
            &[
                (CORE, None),
                ("gix", None),
                ("discobot-store", None),
                ("axum", Some("build")),
            ],
        ));
        packages[0] = package(CORE, &[("tokio", None)]);
        packages.push(package("discobot-mystery", &[]));

        let found: Vec<String> = check(&metadata(packages))
            .unwrap()
            .iter()
            .map(|v| match &v.dep {
                Some((dep, kind)) => format!("{} -> {dep} ({kind})", v.krate),
                None => v.krate.clone(),
            })
            .collect();
        assert_eq!(
            found,
            [
                "discobot-core -> tokio (normal)",
                "discobot-git -> discobot-store (normal)",
                "discobot-git -> axum (build)",
                "discobot-mystery",
            ]
        );
    }

    #[test]
    fn dev_dependencies_are_checked_for_workspace_edges() {
        let packages = vec![
            package(CORE, &[]),
            package("discobot-events", &[(CORE, None)]),
            package(
                "discobot-sandbox",
                &[(CORE, None), ("discobot-events", Some("dev"))],
            ),
        ];
        let violations = check(&metadata(packages)).unwrap();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].krate, "discobot-sandbox");
    }

    #[test]
    fn rules_are_consistent() {
        let mut seen = BTreeSet::new();
        for rule in RULES {
            assert!(seen.insert(rule.krate), "two rules for {}", rule.krate);
            if let Uses::Only(uses) = rule.uses {
                for dep in uses.iter().chain(rule.dev_also) {
                    let known = GATED.contains(dep) || RULES.iter().any(|r| r.krate == *dep);
                    assert!(
                        known,
                        "{} lists {dep}, which is neither gated nor a workspace crate",
                        rule.krate
                    );
                }
            }
        }
    }
}
