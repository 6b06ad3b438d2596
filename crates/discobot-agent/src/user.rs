//! The OS user the agent runs as, read from `/proc/self/status` and `/etc/passwd` (no libc).

use discobot_agent_api::UserResponse;

/// The agent process's user: real uid and gid from `/proc/self/status`, name from
/// `/etc/passwd` (falling back to `$USER`, then the uid, when the uid has no entry, as with
/// `docker run --user 1234`).
pub(crate) async fn current_user() -> std::io::Result<UserResponse> {
    let status = tokio::fs::read_to_string("/proc/self/status").await?;
    let (uid, gid) = proc_status_ids(&status).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no Uid/Gid lines in /proc/self/status",
        )
    })?;
    let passwd = tokio::fs::read_to_string("/etc/passwd")
        .await
        .unwrap_or_default();
    let username = passwd_name(&passwd, uid)
        .or_else(|| std::env::var("USER").ok().filter(|user| !user.is_empty()))
        .unwrap_or_else(|| uid.to_string());
    Ok(UserResponse { username, uid, gid })
}

/// The real uid and gid from the text of `/proc/<pid>/status`
/// (`Uid:\t<real>\t<effective>\t<saved>\t<fs>`, likewise `Gid:`).
pub(crate) fn proc_status_ids(status: &str) -> Option<(u32, u32)> {
    let real_id = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((real_id("Uid:")?, real_id("Gid:")?))
}

/// The name of the first `/etc/passwd` entry (`name:password:uid:gid:gecos:home:shell`) whose
/// uid is `uid`.
pub(crate) fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let entry_uid: u32 = fields.nth(1)?.parse().ok()?;
            (entry_uid == uid && !name.is_empty()).then(|| name.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_ids_from_proc_status() {
        let status = "Name:\tdiscobot-agent\nUmask:\t0022\nState:\tS (sleeping)\n\
                      Uid:\t1000\t1001\t1002\t1003\nGid:\t100\t101\t102\t103\nGroups:\t100\n";
        assert_eq!(proc_status_ids(status), Some((1000, 100)));
        assert_eq!(proc_status_ids("Name:\tx\n"), None);
        assert_eq!(proc_status_ids("Uid:\tabc\nGid:\t0\n"), None);
    }

    #[test]
    fn finds_names_in_passwd() {
        let passwd = "# comment\nroot:x:0:0:root:/root:/bin/bash\n\
                      broken\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                      dev:x:1000:1000::/home/dev:/bin/bash\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("dev"));
        assert_eq!(passwd_name(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(passwd_name(passwd, 1234), None);
        assert_eq!(passwd_name("", 0), None);
    }

    #[tokio::test]
    async fn current_user_matches_proc() {
        let user = current_user().await.unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(Some((user.uid, user.gid)), proc_status_ids(&status));
        assert!(!user.username.is_empty());
    }
}
