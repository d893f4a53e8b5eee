//! Dropping root: the server binds its ports as root, then becomes the configured user and
//! group before the runtime starts, so no session is ever served as root.

use crate::sys::account as sys;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// Supplementary groups kept after the switch: the user's own from /etc/group, plus any
    /// the server adds (the group of a `root:mail 2775` mailbox directory).
    pub groups: Vec<libc::gid_t>,
}

impl Identity {
    /// Keeps `gid` as a supplementary group too.
    pub fn add_group(&mut self, gid: libc::gid_t) {
        if gid != self.gid && !self.groups.contains(&gid) {
            self.groups.push(gid);
        }
    }

    /// Whether the process will be a member of `gid` after the switch.
    pub fn in_group(&self, gid: libc::gid_t) -> bool {
        gid == self.gid || self.groups.contains(&gid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    #[error("unknown user {0:?} (create it, or set `user` in mailtool.toml)")]
    NoUser(String),
    #[error("unknown group {0:?} (create it, or set `group` in mailtool.toml)")]
    NoGroup(String),
    #[error("cannot switch to user {user}: {message}")]
    Switch { user: String, message: String },
}

/// Resolves the user and group names in the system's databases.
pub fn lookup(user: &str, group: &str) -> Result<Identity, PrivError> {
    let (uid, _) = sys::user_by_name(user).ok_or_else(|| PrivError::NoUser(user.into()))?;
    let gid = sys::group_by_name(group).ok_or_else(|| PrivError::NoGroup(group.into()))?;
    Ok(Identity {
        user: user.into(),
        uid,
        gid,
        groups: sys::group_list(user, gid),
    })
}

/// The name of group `gid`, or its number.
pub fn group_name(gid: libc::gid_t) -> String {
    sys::group_name(gid).unwrap_or_else(|| gid.to_string())
}

/// Switches the whole process (it must still be single-threaded) to `id`, for good.
pub fn drop_to(id: &Identity) -> Result<(), PrivError> {
    let mut groups = vec![id.gid];
    groups.extend(id.groups.iter().copied().filter(|&g| g != id.gid));
    sys::switch_to(id.uid, id.gid, &groups).map_err(|e| PrivError::Switch {
        user: id.user.clone(),
        message: format!("{}: {}", e.step, crate::sys::io_message(&e.error)),
    })
}

/// The name of the user the process runs as, for log lines.
pub fn current_user() -> String {
    let uid = crate::sys::process::euid();
    sys::user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_and_unknown_names_fail() {
        let id = lookup("root", "root").unwrap();
        assert_eq!((id.uid, id.gid), (0, 0));
        assert!(!id.groups.contains(&0), "the primary group is not repeated");
        assert_eq!(group_name(0), "root");
        assert_eq!(group_name(4_000_000_123), "4000000123");
        let mut id = id;
        id.add_group(12345);
        id.add_group(12345);
        id.add_group(0);
        assert!(id.in_group(12345) && id.in_group(0) && !id.in_group(7));
        assert_eq!(id.groups.iter().filter(|&&g| g == 12345).count(), 1);
        assert!(matches!(
            lookup("no-such-user-mailtool", "root"),
            Err(PrivError::NoUser(_))
        ));
        assert!(matches!(
            lookup("root", "no-such-group-mailtool"),
            Err(PrivError::NoGroup(_))
        ));
        assert!(!current_user().is_empty());
    }
}
