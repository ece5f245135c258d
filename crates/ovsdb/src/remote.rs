//! OVSDB remotes: `tcp:IP:PORT`, `ssl:IP:PORT`, `unix:PATH`, and comma-separated lists of them for
//! clustered databases.

use std::fmt;
use std::path::PathBuf;

use crate::Error;

/// One OVSDB server address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Remote {
    /// `tcp:HOST:PORT` (IPv6 as `tcp:[::1]:6641`).
    Tcp(String),
    /// `ssl:HOST:PORT`.
    Ssl(String),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl Remote {
    /// Parses one remote, naming the offending value in the error.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let bad = |reason: &str| Error::InvalidRemote {
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| bad("expected tcp:IP:PORT, ssl:IP:PORT or unix:PATH"))?;
        match kind {
            "unix" => {
                if rest.is_empty() {
                    return Err(bad("empty socket path"));
                }
                Ok(Remote::Unix(PathBuf::from(rest)))
            }
            "tcp" | "ssl" => {
                let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("missing :PORT"))?;
                let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                if host.is_empty() || host.contains(char::is_whitespace) {
                    return Err(bad("missing host"));
                }
                if host.contains(':') && !bracketed {
                    return Err(bad("write an IPv6 host in brackets: tcp:[ADDR]:PORT"));
                }
                if bracketed && host.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(bad("the host in brackets is not an IPv6 address"));
                }
                let port: u16 = port
                    .parse()
                    .map_err(|_| bad("port is not a number from 1 to 65535"))?;
                if port == 0 {
                    return Err(bad("port 0 is not connectable"));
                }
                let addr = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                Ok(if kind == "tcp" {
                    Remote::Tcp(addr)
                } else {
                    Remote::Ssl(addr)
                })
            }
            "ptcp" | "pssl" | "punix" => Err(bad(
                "a listening (server) remote; a client connects: use tcp:, ssl: or unix:",
            )),
            _ => Err(bad("unknown scheme; expected tcp:, ssl: or unix:")),
        }
    }

    /// Parses a comma-separated list (a clustered database's members).
    pub fn parse_list(s: &str) -> Result<Vec<Self>, Error> {
        let list: Vec<Remote> = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Remote::parse)
            .collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err(Error::InvalidRemote {
                value: s.to_string(),
                reason: "no remote given".into(),
            });
        }
        Ok(list)
    }

    /// True for `ssl:` remotes.
    pub fn is_ssl(&self) -> bool {
        matches!(self, Remote::Ssl(_))
    }
}

impl std::str::FromStr for Remote {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Remote::parse(s)
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Tcp(a) => write!(f, "tcp:{a}"),
            Remote::Ssl(a) => write!(f, "ssl:{a}"),
            Remote::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Remote::parse("tcp:127.0.0.1:6641").unwrap().to_string(),
            "tcp:127.0.0.1:6641"
        );
        assert_eq!(
            Remote::parse("ssl:[::1]:6641").unwrap().to_string(),
            "ssl:[::1]:6641"
        );
        assert_eq!(
            Remote::parse("unix:/run/ovn/ovnnb_db.sock")
                .unwrap()
                .to_string(),
            "unix:/run/ovn/ovnnb_db.sock"
        );
        assert_eq!(Remote::parse_list("tcp:a:1, tcp:b:2").unwrap().len(), 2);
    }

    #[test]
    fn errors_name_value() {
        for bad in [
            "tcp:1.2.3.4",
            "tcp:1.2.3.4:x",
            "udp:1:2",
            "unix:",
            "ptcp:6641",
            "foo",
        ] {
            let e = Remote::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        let e = Remote::parse("ptcp:6641").unwrap_err().to_string();
        assert!(e.contains("listening"), "{e}");
    }
}
