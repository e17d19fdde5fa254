//! collectd as a source: its values read through the `unixsock` plugin (collectd-unixsock(5)),
//! `LISTVAL` for the identifiers, then `GETVAL` for each. Every answer starts with a status line
//! `N message`: N >= 0 lines follow, N < 0 is an error.
//!
//! Values keep collectd's names: the identifier `host/plugin-instance/type-instance` for a type
//! with one data source named `value` (`web1/memory/memory-used`), and `identifier:source` for
//! the others (`web1/load/load:shortterm`). Values collectd does not know yet (`nan`) are left out.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long one command may take: a stuck collectd costs one sample its collectd values, never
/// the sampler.
const IO_TIMEOUT: Duration = Duration::from_secs(1);

/// Most values taken from one collectd per sample, so a collectd with thousands of series does
/// not make noded's history grow past its bound.
pub const MAX_VALUES: usize = 2000;

/// Reads every value collectd has now into `out`. The error says what failed, with the socket.
pub fn read(socket: &Path, out: &mut BTreeMap<String, f64>) -> Result<(), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("collectd socket {}: {what}: {e}", socket.display());
    let stream = UnixStream::connect(socket).map_err(|e| fail("cannot connect", &e))?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| fail("set timeout", &e))?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| fail("set timeout", &e))?;
    let mut conn = Conn { reader: BufReader::new(stream.try_clone().map_err(|e| fail("clone", &e))?), writer: stream };
    let listing = conn.command("LISTVAL").map_err(|e| fail("LISTVAL", &e))?;
    let identifiers: Vec<String> = listing.iter().filter_map(|l| l.split_once(' ').map(|(_, id)| id.to_string())).collect();
    let mut taken = 0;
    for id in identifiers {
        let lines = conn
            .command(&format!("GETVAL \"{}\"", id.replace('\\', "\\\\").replace('"', "\\\"")))
            .map_err(|e| fail(&format!("GETVAL {id}"), &e))?;
        for (source, value) in lines.iter().filter_map(|l| l.split_once('=')) {
            let Ok(value) = value.trim().parse::<f64>() else { continue };
            if !value.is_finite() || taken >= MAX_VALUES {
                continue;
            }
            let name = if source == "value" { id.clone() } else { format!("{id}:{source}") };
            out.insert(name, value);
            taken += 1;
        }
    }
    Ok(())
}

/// One connection to the socket; collectd answers commands on it in turn.
struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Conn {
    /// Sends one command and returns the lines of its answer.
    fn command(&mut self, command: &str) -> Result<Vec<String>, String> {
        writeln!(self.writer, "{command}").map_err(|e| e.to_string())?;
        let status = self.line()?;
        let (count, message) = status.split_once(' ').unwrap_or((status.as_str(), ""));
        let count: i64 = count.parse().map_err(|_| format!("unexpected answer {status:?}"))?;
        if count < 0 {
            return Err(format!("collectd says: {message}"));
        }
        (0..count).map(|_| self.line()).collect()
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("collectd closed the connection".into()),
            Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A stand-in for collectd's unixsock answering LISTVAL and GETVAL as collectd 5.12 does.
    fn serve(listener: UnixListener) {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let answer = match line.trim() {
                "LISTVAL" => "3 Values found\n1700000000.1 h/load/load\n1700000000.1 h/memory/memory-used\n1700000000.1 h/cpu-0/cpu-idle\n"
                    .to_string(),
                r#"GETVAL "h/load/load""# => "3 Values found\nshortterm=5.0e-01\nmidterm=2.5e-01\nlongterm=1.0e-01\n".into(),
                r#"GETVAL "h/memory/memory-used""# => "1 Value found\nvalue=1.048576e+06\n".into(),
                r#"GETVAL "h/cpu-0/cpu-idle""# => "1 Value found\nvalue=nan\n".into(),
                _ => "-1 No such value\n".into(),
            };
            w.write_all(answer.as_bytes()).unwrap();
            line.clear();
        }
    }

    #[test]
    fn values_are_named_as_collectd_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collectd.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || serve(listener));
        let mut out = BTreeMap::new();
        read(&path, &mut out).unwrap();
        server.join().unwrap();
        let names: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(names, ["h/load/load:longterm", "h/load/load:midterm", "h/load/load:shortterm", "h/memory/memory-used"]);
        assert_eq!(out["h/load/load:shortterm"], 0.5);
        assert_eq!(out["h/memory/memory-used"], 1048576.0);
    }

    #[test]
    fn a_missing_socket_is_an_error_naming_it() {
        let err = read(Path::new("/nonexistent/collectd.sock"), &mut BTreeMap::new()).unwrap_err();
        assert!(err.contains("/nonexistent/collectd.sock") && err.contains("cannot connect"), "{err}");
    }
}
