//! `suggest_dirs`: prefix matching, hidden-dir rules, `~` display, classification, limit.

use discobot_core::model::PathClass;
use discobot_core::ports::GitPort;

use crate::util::{adapter, git};

fn values(s: &[discobot_core::model::DirSuggestion]) -> Vec<&str> {
    s.iter().map(|s| s.value.as_str()).collect()
}

#[tokio::test]
async fn prefix_hidden_and_classification() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    for d in ["alpha", "alps", "beta", ".hidden", ".config"] {
        std::fs::create_dir(home.join(d)).unwrap();
    }
    git(&home.join("alps"), &["init", "-q"]);
    std::fs::write(home.join("beta/file"), "x").unwrap();
    std::fs::write(home.join("alfile"), "not a dir").unwrap();
    let a = adapter(home);

    let s = a.suggest_dirs("~/al").await.unwrap();
    assert_eq!(values(&s), ["~/alpha", "~/alps"]);
    assert_eq!((s[0].class, s[0].valid), (PathClass::Empty, true));
    assert_eq!((s[1].class, s[1].valid), (PathClass::ExistingGit, true));

    // A directory lists its children: no hidden ones, no files, sorted.
    let s = a.suggest_dirs("~/").await.unwrap();
    assert_eq!(values(&s), ["~/alpha", "~/alps", "~/beta"]);
    assert_eq!((s[2].class, s[2].valid), (PathClass::Invalid, false));
    let s = a.suggest_dirs("~").await.unwrap();
    assert_eq!(values(&s), ["~/alpha", "~/alps", "~/beta"]);

    // Hidden ones only when the prefix asks for them.
    let s = a.suggest_dirs("~/.").await.unwrap();
    assert_eq!(values(&s), ["~/.config", "~/.hidden"]);
    let s = a.suggest_dirs("~/.h").await.unwrap();
    assert_eq!(values(&s), ["~/.hidden"]);

    // Absolute input under home is shown with `~` too.
    let s = a
        .suggest_dirs(&format!("{}/be", home.display()))
        .await
        .unwrap();
    assert_eq!(values(&s), ["~/beta"]);

    assert!(a.suggest_dirs("").await.unwrap().is_empty());
    assert!(a.suggest_dirs("~/zzz").await.unwrap().is_empty());
    assert!(a.suggest_dirs("~/nowhere/deeper").await.unwrap().is_empty());
    assert!(a.suggest_dirs("relative").await.unwrap().is_empty());
}

#[tokio::test]
async fn outside_home_shows_absolute_paths_and_caps_at_ten() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let area = tmp.path().join("area");
    for i in 0..12 {
        std::fs::create_dir_all(area.join(format!("dir{i:02}"))).unwrap();
    }
    let a = adapter(&home);
    let s = a
        .suggest_dirs(&format!("{}/dir", area.display()))
        .await
        .unwrap();
    assert_eq!(s.len(), 10);
    assert_eq!(s[0].value, area.join("dir00").display().to_string());
    assert_eq!(s[9].value, area.join("dir09").display().to_string());
    assert!(s.iter().all(|s| s.class == PathClass::Empty && s.valid));
}
