//! The addresses of a ServiceEntry: its virtual IPs or CIDR ranges, and the IP (or Unix
//! socket) of a STATIC endpoint.

use std::net::IpAddr;

/// Why a ServiceEntry address or STATIC endpoint address is refused; the message quotes it
/// and says what may be written there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("`{text}` is not an IP address or CIDR")]
    NotAnIpOrCidr { text: String },
    #[error("`{text}` has prefix length `{prefix}`; it must be 0-{max}")]
    PrefixLength {
        text: String,
        prefix: String,
        max: u8,
    },
    /// A `unix://` endpoint whose path is neither absolute nor abstract.
    #[error(
        "`{address}` must name an absolute socket path (`unix:///...`) or an abstract socket (`unix://@...`)"
    )]
    SocketPath { address: String },
    /// A host name where STATIC resolution needs an address.
    #[error("`{address}` is not an IP address, and resolution STATIC does not resolve names")]
    NotAnIp { address: String },
}

/// An IP address, or a CIDR range `ip/prefix`.
pub fn check_ip_or_cidr(text: &str) -> Result<(), AddressError> {
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (text, None),
    };
    let ip: IpAddr = ip.parse().map_err(|_| AddressError::NotAnIpOrCidr {
        text: text.to_string(),
    })?;
    if let Some(prefix) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match prefix.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => {
                return Err(AddressError::PrefixLength {
                    text: text.to_string(),
                    prefix: prefix.to_string(),
                    max,
                });
            }
        }
    }
    Ok(())
}

/// A STATIC endpoint is an IP address or a Unix socket.
pub(super) fn check_static_address(address: &str) -> Result<(), AddressError> {
    if let Some(path) = address.strip_prefix("unix://") {
        if !(path.starts_with('/') || path.starts_with('@')) || path.ends_with('/') {
            return Err(AddressError::SocketPath {
                address: address.to_string(),
            });
        }
        return Ok(());
    }
    address
        .parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| AddressError::NotAnIp {
            address: address.to_string(),
        })
}
