//! Which addresses the platform may send to. Every outbound address was
//! typed by a customer (a webhook URL) or an operator (a base-URL
//! override), so by default none that reaches inside the network is
//! allowed: loopback, link-local (where cloud metadata lives), private
//! (RFC 1918), shared (CGNAT, 100.64/10), unique-local and link-local
//! IPv6, multicast, reserved and unspecified addresses, and the same
//! addresses written as IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6.
//!
//! The check runs on the address actually connected to: the node resolves
//! a name, checks every address, and connects only to the ones that
//! passed, so a name cannot be re-pointed between check and connect. The
//! control plane also refuses literal addresses at create and update.
//!
//! `DESTINATION_ALLOWLIST` opens ranges (`10.20.0.0/16`), single addresses
//! (`10.20.0.7`) or single services (`127.0.0.1:50081`, `[::1]:8080`) for
//! on-premise partners, sandboxes and tests.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address is refused: the range it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The address.
    pub ip: IpAddr,
    /// The kind of range, e.g. "private (RFC 1918)".
    pub range: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is a {} address, refused as a destination (DESTINATION_ALLOWLIST opens it)",
            self.ip, self.range
        )
    }
}

/// An entry of the allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Net(ipnet::IpNet),
    Service(SocketAddr),
}

/// The allow-list, and the check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    allowed: Vec<Allowed>,
}

/// An allow-list entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "DESTINATION_ALLOWLIST entry `{0}` is not a CIDR range, an address, or an address with a port"
)]
pub struct AllowlistError(pub String);

impl DestinationPolicy {
    /// The default: every internal range refused.
    pub fn strict() -> Self {
        Self::default()
    }

    /// The policy with `list` (comma-separated entries) allowed.
    pub fn with_allowlist(list: &str) -> Result<Self, AllowlistError> {
        let mut policy = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            policy.allowed.push(parse_entry(entry)?);
        }
        Ok(policy)
    }

    /// The same policy also allowing the one service at `address`.
    pub fn allowing_service(mut self, address: SocketAddr) -> Self {
        self.allowed.push(Allowed::Service(address));
        self
    }

    /// Whether the platform may connect to `address`.
    pub fn check(&self, address: SocketAddr) -> Result<(), Refusal> {
        let ip = address.ip();
        let Some(range) = refused_range(ip) else {
            return Ok(());
        };
        let allowed = self.allowed.iter().any(|entry| match entry {
            Allowed::Net(net) => net.contains(&ip) || net.contains(&canonical(ip)),
            Allowed::Service(service) => {
                service.port() == address.port() && canonical(service.ip()) == canonical(ip)
            }
        });
        if allowed {
            Ok(())
        } else {
            Err(Refusal { ip, range })
        }
    }

    /// Whether the platform may connect to `ip` reached through a name, on
    /// a port not known yet: allowed unless refused by default and not in
    /// an allowed range (`address:port` entries open literal URLs only).
    pub fn check_resolved(&self, ip: IpAddr) -> Result<(), Refusal> {
        let Some(range) = refused_range(ip) else {
            return Ok(());
        };
        let allowed = self.allowed.iter().any(|entry| match entry {
            Allowed::Net(net) => net.contains(&ip) || net.contains(&canonical(ip)),
            Allowed::Service(_) => false,
        });
        if allowed {
            Ok(())
        } else {
            Err(Refusal { ip, range })
        }
    }

    /// Checks a URL's host when it is a literal address (a name is checked
    /// when it is resolved). `None` for a URL without a literal address.
    pub fn check_url(&self, url: &url::Url) -> Option<Result<(), Refusal>> {
        let ip = match url.host()? {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        let port = url.port_or_known_default().unwrap_or(0);
        Some(self.check(SocketAddr::new(ip, port)))
    }
}

fn parse_entry(entry: &str) -> Result<Allowed, AllowlistError> {
    if let Ok(net) = entry.parse::<ipnet::IpNet>() {
        return Ok(Allowed::Net(net));
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(Allowed::Net(ipnet::IpNet::from(ip)));
    }
    if let Ok(service) = entry.parse::<SocketAddr>() {
        return Ok(Allowed::Service(service));
    }
    Err(AllowlistError(entry.chars().take(100).collect()))
}

/// An IPv4 address written as IPv6 (mapped, compatible, NAT64, 6to4), as
/// the IPv4 address it reaches; any other address as itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped)
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // ::a.b.c.d (compatible; :: and ::1 are themselves)
        [0, 0, 0, 0, 0, 0, _, _] if ip != Ipv6Addr::UNSPECIFIED && ip != Ipv6Addr::LOCALHOST => {
            Some(low)
        }
        // 64:ff9b::a.b.c.d (NAT64)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 2002:aabb:ccdd::/48 (6to4)
        [0x2002, high, low16, ..] => Some(Ipv4Addr::new(
            (high >> 8) as u8,
            high as u8,
            (low16 >> 8) as u8,
            low16 as u8,
        )),
        _ => None,
    }
}

/// The refused range `ip` is in, if any.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => refused_v4(v4),
            None => refused_v6(v6),
        },
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, ..) => Some("unspecified (0.0.0.0/8)"),
        (127, ..) => Some("loopback"),
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => Some("private (RFC 1918)"),
        (169, 254, _) => Some("link-local (cloud metadata)"),
        (100, 64..=127, _) => Some("shared (CGNAT, 100.64.0.0/10)"),
        (192, 0, 0) | (198, 18..=19, _) => Some("reserved"),
        (168, 63, 129) if ip.octets()[3] == 16 => Some("cloud host service (Azure wire server)"),
        (224..=239, ..) => Some("multicast"),
        (240..=255, ..) => Some("reserved"),
        _ => None,
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xffc0 == 0xfec0 {
        Some("site-local")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if first & 0xff00 == 0xff00 {
        Some("multicast")
    } else if first == 0x2001 && ip.segments()[1] == 0 {
        Some("Teredo tunnel")
    } else if first == 0x64 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 1 {
        Some("local NAT64 (64:ff9b:1::/48)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    #[test]
    fn every_internal_range_is_refused_by_default() {
        let policy = DestinationPolicy::strict();
        for refused in [
            "0.0.0.0:80",
            "127.0.0.1:80",
            "127.9.9.9:80",
            "10.0.0.5:80",
            "172.16.0.1:80",
            "172.31.255.255:80",
            "192.168.1.1:80",
            "169.254.169.254:80",
            "100.64.0.1:80",
            "100.127.255.254:80",
            "224.0.0.1:80",
            "255.255.255.255:80",
            "[::]:80",
            "[::1]:8080",
            "[fe80::1]:80",
            "[fc00::1]:80",
            "[fd12:3456::1]:80",
            "[ff02::1]:80",
            "[::ffff:127.0.0.1]:80",
            "[::ffff:169.254.169.254]:80",
            "[::ffff:a9fe:a9fe]:80",
            "[::10.0.0.5]:80",
            "[64:ff9b::a00:5]:80",
            "[2002:a9fe:a9fe::1]:80",
            "168.63.129.16:80",
            "[2001:0:4136:e378::1]:80",
            "[64:ff9b:1::a00:5]:80",
        ] {
            let refusal = policy.check(at(refused)).expect_err(refused);
            assert!(refusal.to_string().contains("DESTINATION_ALLOWLIST"));
        }
        for allowed in [
            "93.184.216.34:443",
            "172.32.0.1:443",
            "100.128.0.1:443",
            "[2606:4700::1111]:443",
            "[::ffff:93.184.216.34]:443",
        ] {
            assert!(policy.check(at(allowed)).is_ok(), "{allowed}");
        }
        assert_eq!(
            policy
                .check(at("169.254.169.254:80"))
                .expect_err("metadata")
                .range,
            "link-local (cloud metadata)"
        );
    }

    #[test]
    fn the_allowlist_opens_ranges_addresses_and_single_services() {
        let policy = DestinationPolicy::with_allowlist(
            "10.20.0.0/16, 192.168.1.7, 127.0.0.1:50081, [::1]:8080",
        )
        .expect("parses");
        assert!(policy.check(at("10.20.3.4:443")).is_ok());
        assert!(policy.check(at("10.21.0.1:443")).is_err());
        assert!(policy.check(at("192.168.1.7:9999")).is_ok());
        assert!(policy.check(at("127.0.0.1:50081")).is_ok());
        assert!(
            policy.check(at("127.0.0.1:50082")).is_err(),
            "only that port"
        );
        assert!(
            policy.check(at("[::ffff:127.0.0.1]:50081")).is_ok(),
            "the same service"
        );
        assert!(policy.check(at("[::1]:8080")).is_ok());
        assert!(DestinationPolicy::with_allowlist("10.0.0.0/33").is_err());
        assert!(DestinationPolicy::with_allowlist("internal.example").is_err());
        assert_eq!(
            DestinationPolicy::with_allowlist(" , ").expect("empty"),
            DestinationPolicy::strict()
        );
    }

    #[test]
    fn literal_urls_are_checked_names_are_left_to_the_resolver() {
        let policy = DestinationPolicy::strict();
        let url = |text: &str| url::Url::parse(text).expect("url");
        assert!(matches!(
            policy.check_url(&url("http://169.254.169.254/latest/meta-data/")),
            Some(Err(_))
        ));
        assert!(matches!(
            policy.check_url(&url("http://[::1]:8080/")),
            Some(Err(_))
        ));
        assert!(matches!(
            policy.check_url(&url("https://10.0.0.5/")),
            Some(Err(_))
        ));
        assert!(
            matches!(policy.check_url(&url("http://2130706433/")), Some(Err(_))),
            "decimal 127.0.0.1"
        );
        assert!(
            policy
                .check_url(&url("https://hooks.example.com/in"))
                .is_none()
        );
        assert!(matches!(
            policy.check_url(&url("https://93.184.216.34/")),
            Some(Ok(()))
        ));
    }
}
