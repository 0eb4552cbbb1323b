//! The bus's HTTP target: POSTs events as JSON, signed with `X-Gantry-Signature-256` when a
//! webhook secret is configured, with a timeout; never to an internal address (loopback,
//! private, link-local, shared or unspecified) unless the host is allowed in the settings
//! (`allow_internal_hosts`), whether the URL names the address or a name resolves to it, and
//! without following redirects (a redirect could lead anywhere).

use gantry_engine::ports::PostError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub struct HttpPoster {
    client: reqwest::Client,
    secret: Option<crate::server::signature::Secret>,
    allowed: Arc<HashSet<String>>,
}

impl HttpPoster {
    /// `allowed`: hosts (`name` or `name:port`) that may be internal.
    pub fn new(secret: Option<&str>, allowed: &[String]) -> anyhow::Result<HttpPoster> {
        let allowed: Arc<HashSet<String>> =
            Arc::new(allowed.iter().map(|h| h.to_ascii_lowercase()).collect());
        Ok(HttpPoster {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                // Straight to the address checked, never through a proxy from the environment.
                .no_proxy()
                .dns_resolver(Arc::new(ExternalOnly {
                    allowed: allowed.clone(),
                }))
                .build()?,
            secret: secret.and_then(crate::server::signature::Secret::new),
            allowed,
        })
    }

    /// Refuses a URL whose host is an internal address literal not allowed (names are checked
    /// as they resolve, by [`ExternalOnly`]).
    fn check(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        let Some(name) = parsed.host_str().map(str::to_ascii_lowercase) else {
            return Err("the URL has no host".into());
        };
        let Ok(host) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            return Ok(()); // a name: checked as it resolves
        };
        if is_internal(host) && !allows(&self.allowed, &name, parsed.port_or_known_default()) {
            return Err(refused(&name));
        }
        Ok(())
    }
}

/// Whether `allow_internal_hosts` lets `host` (lower case) be internal: listed as it is, or
/// with `port`; with no port known, listed with any.
fn allows(allowed: &HashSet<String>, host: &str, port: Option<u16>) -> bool {
    allowed.iter().any(|a| {
        a == host
            || match (a.rsplit_once(':'), port) {
                (Some((h, p)), Some(port)) => h == host && p == port.to_string(),
                (Some((h, _)), None) => h == host,
                (None, _) => false,
            }
    })
}

fn refused(host: &str) -> String {
    format!("{host} is an internal address; add it to allow_internal_hosts to let rules reach it")
}

#[async_trait::async_trait]
impl gantry_engine::ports::HttpTarget for HttpPoster {
    async fn post(&self, url: &str, body: &[u8]) -> Result<u16, PostError> {
        self.check(url).map_err(PostError::Refused)?;
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = &self.secret {
            req = req.header(
                "x-gantry-signature-256",
                crate::server::signature::sign(s, body),
            );
        }
        match req.send().await {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) if e.is_timeout() => Err(PostError::Failed("timed out".into())),
            Err(e) if e.is_connect() => {
                // The resolver's refusal reaches here as the connection's cause.
                let mut cause: Option<&dyn std::error::Error> = Some(&e);
                while let Some(c) = cause {
                    if let Some(r) = c.downcast_ref::<Refused>() {
                        return Err(PostError::Refused(r.0.clone()));
                    }
                    cause = c.source();
                }
                Err(PostError::Failed("cannot connect".into()))
            }
            Err(_) => Err(PostError::Failed("request failed".into())),
        }
    }
}

/// Resolves names through the system, keeping only external addresses unless the name is
/// allowed; fails when nothing is left.
struct ExternalOnly {
    allowed: Arc<HashSet<String>>,
}

#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl Resolve for ExternalOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        // The port is not known here: any entry for the host lets its names through.
        let allowed = allows(&self.allowed, &host, None);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed || !is_internal(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(Refused(refused(&host))) as Box<_>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is one a rule must not reach without leave: loopback, private
/// (RFC 1918, unique local), link-local (cloud metadata lives there), shared (RFC 6598),
/// unspecified, multicast, broadcast, documentation; IPv4 inside IPv6 as its IPv4.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || (a == 198 && (18..20).contains(&b))
                || a >= 240
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            // IPv4 inside IPv6: compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`), 6to4
            // (`2002::/16`): as the IPv4 address they carry.
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_internal(IpAddr::V4(embedded(s[6], s[7])));
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_internal(IpAddr::V4(embedded(s[6], s[7])));
            }
            if s[0] == 0x2002 {
                return is_internal(IpAddr::V4(embedded(s[1], s[2])));
            }
            let first = s[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_told_apart() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["140.82.112.3", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
