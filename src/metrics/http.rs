//! The `[metrics] listen` endpoint: HTTP/1.x, `GET /metrics` and nothing else. Each request
//! is answered and the connection closed; the request head is bounded in size and time, so
//! a client that trickles or floods costs one small buffer for a few seconds.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::exposition;

/// The longest request head read.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrapes served at once; more wait in the listen backlog.
const MAX_CONCURRENT: usize = 16;

/// What to answer a request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (or HEAD): the body in OpenMetrics when asked for.
    Metrics { openmetrics: bool, head_only: bool },
    /// A status line's code and reason, with a short text body.
    Status(u16, &'static str),
    /// The head is not complete yet.
    Partial,
}

/// Decides on a request head (the bytes read so far).
pub fn route(buf: &[u8]) -> Route {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            Route::Status(431, "Request Header Fields Too Large")
        }
        Ok(httparse::Status::Partial) => Route::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            Route::Status(431, "Request Header Fields Too Large")
        }
        Err(_) => Route::Status(400, "Bad Request"),
        Ok(httparse::Status::Complete(_)) => {
            let method = req.method.unwrap_or("");
            let path = req.path.unwrap_or("");
            // The query string does not change the answer (Prometheus may add one).
            let path = path.split('?').next().unwrap_or("");
            if path != "/metrics" {
                return Route::Status(404, "Not Found");
            }
            let head_only = match method {
                "GET" => false,
                "HEAD" => true,
                _ => return Route::Status(405, "Method Not Allowed"),
            };
            let accept = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("accept"))
                .filter_map(|h| std::str::from_utf8(h.value).ok())
                .collect::<Vec<_>>()
                .join(",");
            Route::Metrics {
                openmetrics: exposition::wants_openmetrics(&accept),
                head_only,
            }
        }
    }
}

fn response(code: u16, reason: &str, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    if code == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Reads one request and answers it. `refresh` sets the gauges read at scrape time.
async fn answer<S>(mut stream: S, refresh: &(dyn Fn() + Send + Sync))
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            match route(&buf) {
                Route::Partial => {}
                r => return Some(r),
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n.min(MAX_HEAD - buf.len().min(MAX_HEAD))]),
            }
        }
    };
    let Ok(Some(route)) = tokio::time::timeout(READ_TIMEOUT, read).await else {
        return;
    };
    let bytes = match route {
        Route::Metrics {
            openmetrics,
            head_only,
        } => {
            refresh();
            let (body, ty) = exposition::render(registry(), openmetrics);
            response(200, "OK", ty, &body, head_only)
        }
        Route::Status(code, reason) => response(
            code,
            reason,
            "text/plain; charset=utf-8",
            &format!("{reason}\n"),
            false,
        ),
        Route::Partial => return,
    };
    let _ = tokio::time::timeout(READ_TIMEOUT, async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

fn registry() -> &'static prometheus_client::registry::Registry {
    static REG: std::sync::OnceLock<prometheus_client::registry::Registry> =
        std::sync::OnceLock::new();
    REG.get_or_init(|| super::get().registry())
}

/// Serves scrapes on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    refresh: Arc<dyn Fn() + Send + Sync>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let refresh = refresh.clone();
                    tokio::spawn(async move {
                        answer(stream, &*refresh).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!("accept on metrics listener: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        let get = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            route(get),
            Route::Metrics {
                openmetrics: false,
                head_only: false
            }
        );
        assert_eq!(
            route(b"GET /metrics?x=1 HTTP/1.0\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n"),
            Route::Metrics {
                openmetrics: true,
                head_only: false
            }
        );
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics {
                openmetrics: false,
                head_only: true
            }
        );
        assert_eq!(
            route(b"GET / HTTP/1.1\r\n\r\n"),
            Route::Status(404, "Not Found")
        );
        assert_eq!(
            route(b"GET /metrics/../etc HTTP/1.1\r\n\r\n"),
            Route::Status(404, "Not Found")
        );
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::Status(405, "Method Not Allowed")
        );
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n"), Route::Partial);
        assert_eq!(
            route(b"\x16\x03\x01\x02\x00"),
            Route::Status(400, "Bad Request")
        );
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(
            route(&long),
            Route::Status(431, "Request Header Fields Too Large")
        );
    }

    #[tokio::test]
    async fn a_request_gets_one_answer() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let refreshed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = refreshed.clone();
        let task = tokio::spawn(async move {
            answer(server, &move || {
                r.store(true, std::sync::atomic::Ordering::SeqCst)
            })
            .await
        });
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        client.read_to_string(&mut out).await.unwrap();
        task.await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains(&format!("Content-Type: {}\r\n", exposition::TEXT_004)));
        assert!(
            out.contains("# TYPE mailtool_smtp_connections_total counter"),
            "{out}"
        );
        assert!(refreshed.load(std::sync::atomic::Ordering::SeqCst));
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let len: usize = out
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
    }
}
