//! A scrape's body: OpenMetrics 1.0 text as prometheus-client encodes it, or, for scrapers
//! that do not ask for OpenMetrics, the Prometheus text format 0.0.4. The two differ only in
//! framing: 0.0.4 names a counter's family with its `_total` and has no `# EOF` or `# UNIT`.

use prometheus_client::registry::Registry;

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the scraper's Accept header asks for OpenMetrics (Prometheus sends it first when
/// it prefers it; a `q=0` entry is a refusal).
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let ty = it.next().unwrap_or("");
        let refused = it.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        ty.eq_ignore_ascii_case("application/openmetrics-text") && !refused
    })
}

/// The body and its content type.
pub fn render(registry: &Registry, openmetrics: bool) -> (String, &'static str) {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        // Encoding into a String fails only if a collector fails; serve what there is.
        text.push_str("# EOF\n");
    }
    if openmetrics {
        (text, OPENMETRICS)
    } else {
        (to_text_004(&text), TEXT_004)
    }
}

/// OpenMetrics text to 0.0.4: counters' HELP and TYPE name `NAME_total`, as their samples do.
pub fn to_text_004(om: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, "counter")) = rest.split_once(' ')
        {
            counters.insert(name.to_string());
        }
    }
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(l.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn accept_header_picks_the_format() {
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        ));
        assert!(wants_openmetrics("Application/OpenMetrics-Text"));
        assert!(!wants_openmetrics("text/plain;version=0.0.4"));
        assert!(!wants_openmetrics("*/*"));
        assert!(!wants_openmetrics(""));
        assert!(!wants_openmetrics(
            "application/openmetrics-text;q=0, text/plain"
        ));
        assert!(wants_openmetrics("application/openmetrics-text;q=0.1"));
    }

    #[test]
    fn both_formats_from_one_registry() {
        let mut r = Registry::default();
        let c: Counter = Counter::default();
        c.inc_by(3);
        r.register("demo_things", "Things done", c);
        let g: Gauge = Gauge::default();
        g.set(7);
        r.register("demo_level", "A level", g);
        let (om, ty) = render(&r, true);
        assert_eq!(ty, OPENMETRICS);
        assert!(om.contains("# TYPE demo_things counter\n"), "{om}");
        assert!(om.contains("demo_things_total 3\n"), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
        let (text, ty) = render(&r, false);
        assert_eq!(ty, TEXT_004);
        assert_eq!(
            text,
            "# HELP demo_things_total Things done.\n# TYPE demo_things_total counter\n\
             demo_things_total 3\n# HELP demo_level A level.\n# TYPE demo_level gauge\n\
             demo_level 7\n"
        );
    }
}
