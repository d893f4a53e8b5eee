//! The user and group databases (getpwnam_r, getgrnam_r, getgrouplist, getgrgid_r) and the
//! one-way switch of the process's credentials.

use std::ffi::{CStr, CString};
use std::io;

/// Room for one passwd or group entry with its strings; large groups may need more.
const ENTRY_BUF: usize = 16384;

/// A user's uid and primary gid, or `None` when the name is not in the database.
pub fn user_by_name(name: &str) -> Option<(libc::uid_t, libc::gid_t)> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; ENTRY_BUF];
    // SAFETY: pwd is a plain C struct; the result pointer points at `pwd` (whose strings are in
    // `buf`) or is null; only the numbers are read.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut res,
        );
        (rc == 0 && !res.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
    }
}

/// A group's gid, or `None` when the name is not in the database.
pub fn group_by_name(name: &str) -> Option<libc::gid_t> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; ENTRY_BUF];
    // SAFETY: as in user_by_name, for struct group.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut res: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut res,
        );
        (rc == 0 && !res.is_null()).then_some(grp.gr_gid)
    }
}

/// The name of group `gid`, or `None` when it has none.
pub fn group_name(gid: libc::gid_t) -> Option<String> {
    let mut buf = vec![0u8; ENTRY_BUF];
    // SAFETY: grp is a plain C struct; gr_name points into `buf` and is copied before `buf`
    // goes away.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut res: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut res);
        if rc != 0 || res.is_null() || grp.gr_name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned())
    }
}

/// The name of user `uid`, or `None` when it has none.
pub fn user_name(uid: libc::uid_t) -> Option<String> {
    user_by_uid(uid).map(|(name, _)| name)
}

/// The login name and the GECOS field of user `uid`.
pub fn user_by_uid(uid: libc::uid_t) -> Option<(String, Option<String>)> {
    let mut buf = vec![0u8; ENTRY_BUF];
    // SAFETY: pwd is a plain C struct; pw_name and pw_gecos point into `buf` and are copied
    // before `buf` goes away.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut res);
        if rc != 0 || res.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
        let gecos = (!pwd.pw_gecos.is_null())
            .then(|| CStr::from_ptr(pwd.pw_gecos).to_string_lossy().into_owned());
        Some((name, gecos))
    }
}

/// The user's groups from the group database (getgrouplist), without the primary `gid`.
pub fn group_list(user: &str, gid: libc::gid_t) -> Vec<libc::gid_t> {
    let Ok(user) = CString::new(user) else {
        return Vec::new();
    };
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

/// Which step of [`switch_to`] failed, and why.
#[derive(Debug)]
pub struct SwitchError {
    pub step: &'static str,
    pub error: io::Error,
}

/// Switches the whole process (it must still be single-threaded) to `uid`, `gid` and the
/// supplementary `groups`, for good: groups, then gid, then uid, and a check that root cannot
/// be regained.
pub fn switch_to(
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: &[libc::gid_t],
) -> Result<(), SwitchError> {
    let fail = |step| SwitchError {
        step,
        error: io::Error::last_os_error(),
    };
    // SAFETY: these calls only change process credentials; `groups` is valid for its length.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(fail("setgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(fail("setgid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(fail("setuid"));
        }
        if uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() == 0) {
            return Err(SwitchError {
                step: "setuid",
                error: io::Error::other("root privileges could be regained"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_databases_answer() {
        assert_eq!(user_by_name("root"), Some((0, 0)));
        assert_eq!(group_by_name("root"), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(user_by_name("no-such-user-here"), None);
        assert_eq!(group_by_name("no-such-group-here"), None);
        assert_eq!(user_by_name("nul\0inside"), None);
        assert!(!group_list("root", 0).contains(&0));
    }
}
