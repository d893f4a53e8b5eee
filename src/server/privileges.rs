//! Dropping root: the server binds its ports as root, then becomes the configured user and
//! group before the runtime starts, so no session is ever served as root.

use std::ffi::{CStr, CString};
use std::io;

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

/// Resolves the user and group names with getpwnam_r/getgrnam_r.
pub fn lookup(user: &str, group: &str) -> Result<Identity, PrivError> {
    let cuser = CString::new(user).map_err(|_| PrivError::NoUser(user.into()))?;
    let cgroup = CString::new(group).map_err(|_| PrivError::NoGroup(group.into()))?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: pwd/grp are plain C structs; the result pointers point into `buf` or are null.
    let uid = unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            cuser.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut res,
        );
        if rc != 0 || res.is_null() {
            return Err(PrivError::NoUser(user.into()));
        }
        pwd.pw_uid
    };
    let gid = unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut res: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            cgroup.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut res,
        );
        if rc != 0 || res.is_null() {
            return Err(PrivError::NoGroup(group.into()));
        }
        grp.gr_gid
    };
    Ok(Identity {
        user: user.into(),
        uid,
        gid,
        groups: group_list(&cuser, gid),
    })
}

/// The user's groups from the group database (getgrouplist), without the primary one.
fn group_list(user: &CStr, gid: libc::gid_t) -> Vec<libc::gid_t> {
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let mut count = n;
        // SAFETY: `groups` has room for `count` entries; getgrouplist writes at most that many
        // and sets `count` to the number needed when it returns -1.
        let rc = unsafe { libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            groups.retain(|&g| g != gid);
            return groups;
        }
        if count <= n || n >= 65536 {
            return Vec::new();
        }
        n = count;
    }
}

/// The name of group `gid`, or its number.
pub fn group_name(gid: libc::gid_t) -> String {
    let mut buf = vec![0u8; 16384];
    // SAFETY: grp is a plain C struct; the result pointer points into `buf` or is null.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut res: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut res);
        if rc != 0 || res.is_null() || grp.gr_name.is_null() {
            return gid.to_string();
        }
        CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned()
    }
}

/// Switches the whole process (it must still be single-threaded) to `id`, for good.
pub fn drop_to(id: &Identity) -> Result<(), PrivError> {
    let fail = |what: &str| PrivError::Switch {
        user: id.user.clone(),
        message: format!(
            "{what}: {}",
            crate::util::io_message(&io::Error::last_os_error())
        ),
    };
    // SAFETY: these calls only change process credentials; the order (groups, gid, uid) is
    // the one that leaves no way back to root.
    let mut groups = vec![id.gid];
    groups.extend(id.groups.iter().copied().filter(|&g| g != id.gid));
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(fail("setgroups"));
        }
        if libc::setgid(id.gid) != 0 {
            return Err(fail("setgid"));
        }
        if libc::setuid(id.uid) != 0 {
            return Err(fail("setuid"));
        }
        if id.uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() == 0) {
            return Err(PrivError::Switch {
                user: id.user.clone(),
                message: "root privileges could be regained".into(),
            });
        }
    }
    Ok(())
}

/// The name of the user the process runs as, for log lines.
pub fn current_user() -> String {
    // SAFETY: getpwuid returns a pointer to static storage or null; we copy out at once.
    unsafe {
        let p = libc::getpwuid(libc::geteuid());
        if p.is_null() || (*p).pw_name.is_null() {
            return format!("uid {}", libc::geteuid());
        }
        CStr::from_ptr((*p).pw_name).to_string_lossy().into_owned()
    }
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
