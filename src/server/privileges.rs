//! Dropping root: the server binds its ports as root, then becomes the configured user and
//! group before the runtime starts, so no session is ever served as root.

use std::ffi::{CStr, CString};
use std::io;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
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
    })
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
    unsafe {
        if libc::setgroups(1, &id.gid) != 0 {
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
