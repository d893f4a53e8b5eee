//! Crash recovery of the spool at open: what a process that died mid-write left behind is
//! finished or removed, so every `qf` names a complete message (see [`crate::queue`]).

use std::collections::HashSet;
use std::fs;
use std::io;

use super::id::QueueId;
use super::spool::*;
use crate::sys::io_message;

impl Spool {
    pub(super) fn recover(&self) -> Result<RecoveryReport, SpoolError> {
        let mut report = RecoveryReport::default();
        let mut names: Vec<String> = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(|e| SpoolError::io("readdir", &self.dir, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| SpoolError::io("readdir", &self.dir, e))?;
            if let Ok(name) = ent.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        let remove = |name: &str, reason: &str, report: &mut RecoveryReport| match fs::remove_file(
            self.dir.join(name),
        ) {
            Ok(()) => report.removed.push((name.to_string(), reason.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => report.corrupt.push((
                name.to_string(),
                format!("cannot remove: {}", io_message(&e)),
            )),
        };
        let mut live_qf: HashSet<QueueId> = HashSet::new();
        let mut in_flight: HashSet<QueueId> = HashSet::new();
        // 1. tf files: never acknowledged.
        for name in &names {
            if let Some(id) = id_of(name, "tf") {
                if id.writer_alive() {
                    in_flight.insert(id);
                } else {
                    remove(name, "temporary control file", &mut report);
                }
            }
        }
        // 2. qf files: must be complete and have a full df.
        for name in &names {
            let Some(id) = id_of(name, "qf") else {
                continue;
            };
            let path = self.dir.join(name);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    report.corrupt.push((name.clone(), io_message(&e)));
                    live_qf.insert(id);
                    continue;
                }
            };
            let df_len = fs::metadata(self.data_path(&id)).map(|m| m.len()).ok();
            match Envelope::parse_qf(&bytes) {
                Err(QfError::Incomplete) => {
                    remove(name, "control file without final '.' line", &mut report);
                    remove(
                        &format!("df{id}"),
                        "data file of an incomplete control file",
                        &mut report,
                    );
                }
                Err(QfError::Corrupt(why)) => {
                    report.corrupt.push((name.clone(), why));
                    live_qf.insert(id);
                }
                Ok(env) => match df_len {
                    None => remove(name, "data file missing", &mut report),
                    Some(len) if len < env.size => {
                        remove(name, "data file shorter than recorded", &mut report);
                        remove(
                            &format!("df{id}"),
                            "data file shorter than recorded",
                            &mut report,
                        );
                    }
                    Some(_) => {
                        live_qf.insert(id);
                    }
                },
            }
        }
        // 3. df files without a qf: the control file was never committed.
        for name in &names {
            if let Some(id) = id_of(name, "df")
                && !live_qf.contains(&id)
                && !in_flight.contains(&id)
                && !id.writer_alive()
            {
                remove(name, "data file without control file", &mut report);
            }
        }
        if !report.removed.is_empty() {
            self.sync_dir()?;
        }
        Ok(report)
    }
}
