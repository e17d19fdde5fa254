//! Why a hub could not be reached, in an admin's words rather than the transport's ("Failed
//! Greeting exchange", "Codec Error"): asked of the network again only after an attach failed.

use std::time::Duration;

/// Explains a failed attach to `hub` by probing its address: nothing listening, a name that does
/// not resolve, no answer, or something there that is not a fleet hub.
pub async fn connect_failure(hub: &str, transport_error: &str, timeout: Duration) -> String {
    let Some(addr) = hub.strip_prefix("tcp://") else {
        return match hub.strip_prefix("ipc://") {
            Some(path) if !std::path::Path::new(path).exists() => format!("{hub}: no socket at {path} (is `noded hub` running?)"),
            _ => format!("{hub}: cannot attach ({transport_error})"),
        };
    };
    let Some((host, port)) = addr.rsplit_once(':') else { return format!("{hub}: not HOST:PORT after tcp://") };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let resolved = match tokio::net::lookup_host((host, port.parse::<u16>().unwrap_or(0))).await {
        Ok(mut addrs) => addrs.next(),
        Err(_) => return format!("{hub}: cannot resolve host '{host}'"),
    };
    let Some(target) = resolved else { return format!("{hub}: cannot resolve host '{host}'") };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await {
        Err(_) => format!("{hub}: no answer from {target} within {:.0} s (a firewall, or the host is down)", timeout.as_secs_f64()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("{hub}: connection refused: nothing listens on {target} (is `noded hub` running there?)")
        }
        Ok(Err(e)) => format!("{hub}: cannot connect to {target}: {e}"),
        Ok(Ok(_)) => format!("{hub}: something listens on {target} but does not speak fleet's protocol ({transport_error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_are_named() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let t = Duration::from_secs(2);
        let e = connect_failure(&format!("tcp://127.0.0.1:{port}"), "Failed Greeting exchange", t).await;
        assert!(e.contains("connection refused: nothing listens on 127.0.0.1:"), "{e}");
        let e = connect_failure("tcp://no-such-host.invalid:7402", "Codec Error", t).await;
        assert!(e.contains("cannot resolve host 'no-such-host.invalid'"), "{e}");
        let e = connect_failure("ipc:///nonexistent/fleet.sock", "x", t).await;
        assert!(e.contains("no socket at /nonexistent/fleet.sock"), "{e}");
    }
}
