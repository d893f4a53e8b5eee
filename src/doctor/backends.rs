//! Backends: every `[backends.NAME]` a map lives in is reachable, its tables are there with
//! the right shape, and how long a round trip takes.

use super::Check;
use crate::config::{Config, MapPlace};
use crate::maps::backend::Backends;

/// The `[maps]` entries that live in backends, as `(map, backend, table)`.
pub fn tables(cfg: &Config) -> Vec<(&'static str, String, String)> {
    let m = &cfg.settings.maps;
    [
        ("access", &m.access),
        ("virtusertable", &m.virtusertable),
        ("aliases", &m.aliases),
        ("localip", &m.localip),
        ("popip", &m.popip),
        ("users", &m.users),
    ]
    .into_iter()
    .filter_map(|(label, name)| match cfg.map_place(name) {
        Ok(MapPlace::Backend { backend, table }) => Some((label, backend, table)),
        _ => None,
    })
    .collect()
}

/// One check per backend table named in `[maps]`, and one per configured backend that no map
/// uses (reachability only).
pub fn check(cfg: &Config) -> Vec<Check> {
    let backends = Backends::new(cfg);
    let mut out = Vec::new();
    let used = tables(cfg);
    for (label, backend, table) in &used {
        let name = format!("map {label}");
        let place = format!("{backend}:{table}");
        let b = match backends.get(backend) {
            Ok(b) => b,
            Err(e) => {
                out.push(Check::fail(
                    name,
                    e.to_string(),
                    "fix [backends] in mailtool.toml",
                ));
                continue;
            }
        };
        out.push(match b.check(table) {
            Ok(c) => {
                let rtt = format!("{:.1} ms", c.rtt.as_secs_f64() * 1000.0);
                match c.present {
                    Some(Ok(())) => {
                        Check::pass(name, format!("{place}: present, round trip {rtt}"))
                    }
                    None => Check::warn(
                        name,
                        format!("{place}: no such table yet (an empty map), round trip {rtt}"),
                        format!("build it: mailtool makemap hash {place} < SOURCE"),
                    ),
                    Some(Err(shape)) => Check::fail(
                        name,
                        format!("{place}: {shape}"),
                        "the table must be (key text PRIMARY KEY, value text NOT NULL)",
                    ),
                }
            }
            Err(e) => Check::fail(
                name,
                format!("{place}: {e}"),
                "start the backend, or check [backends] url and password_file",
            ),
        });
    }
    for name in backends.names() {
        if used.iter().any(|(_, b, _)| b == name) {
            continue;
        }
        let label = format!("backend {name}");
        out.push(
            match backends.get(name).and_then(|b| b.check("mailtool_probe")) {
                Ok(c) => Check::pass(
                    label,
                    format!(
                        "reachable, round trip {:.1} ms (no map uses it)",
                        c.rtt.as_secs_f64() * 1000.0
                    ),
                ),
                Err(e) => Check::fail(label, e.to_string(), "start the backend, or remove it"),
            },
        );
    }
    out
}
