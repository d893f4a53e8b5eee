//! The `metrics_request` target: the request head a scraper (or anyone who can reach the
//! `[metrics] listen` port) sends (`metrics::http::route`).

use crate::metrics::http::{MAX_HEAD, Route, route};

/// What the fuzzer (`fuzz/fuzz_targets/metrics_request.rs`) and its stable replay check on any
/// input:
///
/// * the metrics are served only for a complete `GET` or `HEAD` of `/metrics` (one that ended
///   in an empty line), and every other answer is a 4xx;
/// * a head that is still incomplete at [`MAX_HEAD`] bytes is refused, never waited for;
/// * deciding on a prefix of a complete head never serves what the whole head would not.
pub fn invariants(data: &[u8]) {
    let r = route(data);
    match &r {
        Route::Metrics { head_only, .. } => {
            let text = String::from_utf8_lossy(data);
            let method = if *head_only { "HEAD " } else { "GET " };
            assert!(text.starts_with(method), "{text:?}");
            assert!(text[method.len()..].starts_with("/metrics"), "{text:?}");
            // Complete means it ended in an empty line.
            assert!(
                data.windows(2).any(|w| w == b"\n\n") || data.windows(3).any(|w| w == b"\n\r\n"),
                "{text:?}"
            );
        }
        Route::Status(code, _) => assert!((400..500).contains(code)),
        Route::Partial => assert!(data.len() < MAX_HEAD),
    }
    let cut = data.len() / 2;
    if let Route::Metrics { .. } = route(&data[..cut]) {
        assert!(matches!(r, Route::Metrics { .. }), "{r:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan::text(
            "metrics_request",
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n",
            MAX_HEAD + 16,
        )
        .run(invariants);
    }
}
