//! Origins (scheme, host, port) and the authorities of `Host` headers, parsed and normalised
//! (lower case, canonical IP addresses, default ports made explicit) so that two spellings of
//! one address compare equal. Used by the request guard; no I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `http` or `https` with a host and a port: a browser origin, or where a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    /// Lower case; an IPv6 address in brackets.
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// `http://` the address (an IPv6 address in brackets).
    pub fn http(ip: IpAddr, port: u16) -> Origin {
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Origin {
            https: false,
            host,
            port,
        }
    }

    /// An `Origin` header's value, or a configured origin: `http(s)://host[:port]`, nothing
    /// after (a single trailing `/` is allowed).
    pub fn parse(text: &str) -> Option<Origin> {
        let (https, rest) = scheme(text)?;
        Origin::with(https, rest.strip_suffix('/').unwrap_or(rest))
    }

    /// The origin of a URL (`GANTRY_PUBLIC_URL`): its path, query and fragment are ignored.
    pub fn of_url(text: &str) -> Option<Origin> {
        let (https, rest) = scheme(text.trim())?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        Origin::with(https, &rest[..end])
    }

    fn with(https: bool, authority: &str) -> Option<Origin> {
        let (host, port) = authority_parts(authority)?;
        Some(Origin {
            https,
            host,
            port: port.unwrap_or(if https { 443 } else { 80 }),
        })
    }

    /// Whether a `Host` header's authority names this origin (no port: the scheme's default).
    pub fn is_named_by(&self, host: &str, port: Option<u16>) -> bool {
        self.host == host && port.unwrap_or(if self.https { 443 } else { 80 }) == self.port
    }

    /// `host:port` as a client puts it in a `Host` header.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, default) = if self.https {
            ("https", 443)
        } else {
            ("http", 80)
        };
        if self.port == default {
            write!(f, "{scheme}://{}", self.host)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

fn scheme(text: &str) -> Option<(bool, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some((false, rest)),
        "https" => Some((true, rest)),
        _ => None,
    }
}

/// A `Host` header (or a URL's authority): its normalised host and its port, if it names one.
/// `None` for anything that is not a plain `host[:port]` (user info, bad characters, a bare
/// IPv6 address, a port out of range).
pub fn authority_parts(text: &str) -> Option<(String, Option<u16>)> {
    let text = text.trim().to_ascii_lowercase();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = ip.parse().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{ip}]"), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text.as_str(), None),
        };
        let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
        if host.is_empty() || !host.bytes().all(plain) {
            return None;
        }
        let host = match host.parse::<Ipv4Addr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => host.to_string(),
        };
        (host, port)
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(p.parse::<u16>().ok()?),
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised() {
        let parts = |t: &str| authority_parts(t);
        assert_eq!(
            parts("LocalHost:8080"),
            Some(("localhost".into(), Some(8080)))
        );
        assert_eq!(parts("example.com"), Some(("example.com".into(), None)));
        assert_eq!(parts("example.com:"), Some(("example.com".into(), None)));
        assert_eq!(
            parts("[0:0:0:0:0:0:0:1]:80"),
            Some(("[::1]".into(), Some(80)))
        );
        assert_eq!(parts("127.0.0.1:1"), Some(("127.0.0.1".into(), Some(1))));
        for bad in [
            "",
            ":80",
            "::1",
            "[::1",
            "[nope]:1",
            "a b:1",
            "user@host:1",
            "h:99999",
            "h:1:2",
            "h:x",
        ] {
            assert_eq!(parts(bad), None, "{bad}");
        }
    }

    #[test]
    fn origins_compare_with_default_ports() {
        let o = Origin::parse("https://App.Example.com").unwrap();
        assert_eq!(o, Origin::parse("https://app.example.com:443/").unwrap());
        assert_ne!(o, Origin::parse("http://app.example.com").unwrap());
        assert_eq!(o.to_string(), "https://app.example.com");
        assert!(o.is_named_by("app.example.com", None));
        assert!(o.is_named_by("app.example.com", Some(443)));
        assert!(!o.is_named_by("app.example.com", Some(80)));
        assert_eq!(
            Origin::of_url("https://ci.example.com:8443/gantry?x#y").unwrap(),
            Origin::parse("https://ci.example.com:8443").unwrap()
        );
        for bad in [
            "null",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://u@a",
            "*",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Origin::http("::1".parse().unwrap(), 8080).to_string(),
            "http://[::1]:8080"
        );
    }
}
