//! A Sidecar's listeners: ingress ports (with their bind and default endpoint) and egress
//! ports (a number, or a Unix socket bind; one port-less catch-all listener, last), as Istio's
//! `ValidateSidecar` reads them.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::sidecar::{Sidecar, SidecarPort};
use crate::manifest::kinds::NameRule;
use crate::manifest::yaml::pointer_join;
use crate::validate::gateway::{SERVICE_PROTOCOLS, known_protocol, valid_port_number};
use crate::validate::k8s_names::name_problem;

const UNIX: &str = "unix://";

/// One problem of a listener: the field under the listener, what is wrong, the fix.
struct Problem {
    field: &'static str,
    why: String,
    fix: String,
}

impl Problem {
    fn new(field: &'static str, why: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            field,
            why: why.into(),
            fix: fix.into(),
        }
    }

    fn push(self, m: &Manifest, code: &'static str, at: &str, out: &mut Vec<Diagnostic>) {
        let p = format!("{at}/{}", self.field);
        out.push(
            m.error(code, &p, format!("{}: {}", display_path(&p), self.why))
                .fix(self.fix),
        );
    }
}

/// What both kinds of listener check in their port: a known protocol when one is written
/// (none means protocol sniffing), a DNS-1123 port name, and no targetPort (Istio refuses it:
/// a Sidecar listener has no target).
fn common_problems(port: &SidecarPort) -> Vec<Problem> {
    let mut found = Vec::new();
    if let Some(p) = &port.protocol
        && !p.is_empty()
        && known_protocol(p, SERVICE_PROTOCOLS).is_none()
    {
        found.push(Problem::new(
            "port/protocol",
            format!("`{p}` is not a protocol Istio knows"),
            format!(
                "use one of {}, or leave it out to let Istio detect it",
                SERVICE_PROTOCOLS.join(", ")
            ),
        ));
    }
    if let Some(name) = &port.name
        && let Some(why) = name_problem(name, NameRule::Label)
    {
        found.push(Problem::new(
            "port/name",
            format!("`{name}` {why}; a port name is a DNS-1123 label"),
            "name the port in lowercase, e.g. `http` or `tcp-db`",
        ));
    }
    if port.target_port.is_some_and(|t| t > 0) {
        found.push(Problem::new(
            "port/targetPort",
            "a Sidecar listener has no target port; Istio refuses targetPort here",
            "remove targetPort (the application's port is `defaultEndpoint` on ingress)",
        ));
    }
    found
}

/// A bind address, when written, is an IP address.
fn bind_problem(bind: Option<&str>) -> Option<Problem> {
    let bind = bind.filter(|b| !b.is_empty())?;
    bind.parse::<IpAddr>().is_err().then(|| {
        Problem::new(
            "bind",
            format!("`{bind}` is not an IP address"),
            "bind to an IP address such as 0.0.0.0, or remove bind",
        )
    })
}

/// Every ingress listener has a valid port (a number, at most once), an IP bind and a
/// default endpoint Istio accepts.
pub(super) fn check_ingress(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for (i, ingress) in sidecar.ingress.iter().enumerate() {
        let at = pointer_join("/spec/ingress", i);
        let Some(port) = &ingress.port else {
            out.push(
                m.error(
                    "sidecar-ingress-port",
                    &at,
                    format!("{}: an ingress listener needs a port", display_path(&at)),
                )
                .fix("add `port: {number: 9080, protocol: HTTP, name: http}`"),
            );
            continue;
        };
        let mut problems = Vec::new();
        match port.number {
            Some(n) if valid_port_number(n) => {}
            Some(n) => problems.push(Problem::new(
                "port/number",
                format!("{n} is not a port number (1-65535)"),
                "use a port between 1 and 65535",
            )),
            None => problems.push(Problem::new(
                "port/number",
                "the port has no number",
                "add `number:` with the port the listener takes traffic on",
            )),
        }
        problems.extend(common_problems(port));
        problems.extend(bind_problem(ingress.bind.as_deref()));
        for problem in problems {
            problem.push(m, "sidecar-ingress-port", &at, out);
        }
        if let Some(endpoint) = &ingress.default_endpoint
            && let Some(why) = default_endpoint_problem(endpoint)
        {
            let p = format!("{at}/defaultEndpoint");
            out.push(
                m.error(
                    "sidecar-default-endpoint",
                    &p,
                    format!("{}: `{endpoint}` {why}", display_path(&p)),
                )
                .fix("write 127.0.0.1:PORT (or 0.0.0.0:PORT, [::1]:PORT, [::]:PORT) or unix:///path/to.sock"),
            );
        }
        if let Some(number) = port.number {
            if let Some(first) = seen.get(&number) {
                let p = format!("{at}/port/number");
                out.push(
                    m.error(
                        "sidecar-duplicate-ingress-port",
                        &p,
                        format!(
                            "{}: port {number} already has a listener in spec.ingress[{first}]",
                            display_path(&p)
                        ),
                    )
                    .fix("declare each inbound port once"),
                );
            } else {
                seen.insert(number, i);
            }
        }
    }
}

/// Why Istio refuses a default endpoint: it forwards to the workload itself, so the host is
/// a loopback or any-address (or a Unix socket path).
fn default_endpoint_problem(endpoint: &str) -> Option<String> {
    if let Some(path) = endpoint.strip_prefix(UNIX) {
        return unix_path_problem(path);
    }
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        return Some("has no `:PORT`".to_string());
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "::1" | "::") {
        return Some(format!(
            "forwards to `{host}`; a default endpoint is the workload itself: 127.0.0.1, 0.0.0.0, ::1 or ::"
        ));
    }
    match port.parse::<u32>() {
        Ok(n) if valid_port_number(n) => None,
        Ok(_) | Err(_) => Some(format!("has port `{port}`, not a port number (1-65535)")),
    }
}

/// A Unix socket path is absolute or abstract (`@name`), and not a directory.
fn unix_path_problem(path: &str) -> Option<String> {
    if path.starts_with('@') {
        return None;
    }
    (!path.starts_with('/') || path.ends_with('/'))
        .then(|| "is not an absolute path to a socket file (or an abstract `@name`)".to_string())
}

/// Egress listeners: a port with a number, or number 0 (or none) with a Unix socket bind;
/// ports and sockets once each; at most one listener without a port, and it comes last.
pub(super) fn check_egress(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    let mut numbers: HashMap<u32, usize> = HashMap::new();
    let mut sockets: HashMap<&str, usize> = HashMap::new();
    let mut catch_all: Option<usize> = None;
    let last = sidecar.egress.len().saturating_sub(1);
    for (i, egress) in sidecar.egress.iter().enumerate() {
        let at = pointer_join("/spec/egress", i);
        let Some(port) = &egress.port else {
            let why = match catch_all {
                Some(first) => Some(format!(
                    "spec.egress[{first}] already has no port; only one listener may catch every port"
                )),
                None if i != last => Some(
                    "a listener without a port catches every port, so it must be the last one"
                        .to_string(),
                ),
                None => None,
            };
            if catch_all.is_none() {
                catch_all = Some(i);
            }
            if let Some(why) = why {
                out.push(
                    m.error("sidecar-egress-port", &at, format!("{}: {why}", display_path(&at)))
                        .fix("move the listener without a port to the end, and merge such listeners into one"),
                );
            }
            continue;
        };
        let mut problems = common_problems(port);
        let bind = egress.bind.as_deref().unwrap_or("");
        match port.number.unwrap_or(0) {
            0 => match bind.strip_prefix(UNIX) {
                None => problems.push(Problem::new(
                    "port/number",
                    "a port without a number listens on a Unix socket, and bind is not `unix://...`",
                    "give the port a number (1-65535), or bind it to `unix:///path/to.sock`",
                )),
                Some(path) => {
                    if let Some(why) = unix_path_problem(path) {
                        problems.push(Problem::new("bind", format!("`{bind}` {why}"), "bind to `unix:///path/to.sock`"));
                    }
                    if sockets.insert(bind, i).is_some() {
                        problems.push(Problem::new(
                            "bind",
                            format!("`{bind}` already has a listener"),
                            "give each listener its own socket",
                        ));
                    }
                }
            },
            n if !valid_port_number(n) => problems.push(Problem::new(
                "port/number",
                format!("{n} is not a port number (1-65535)"),
                "use a port between 1 and 65535",
            )),
            n => {
                problems.extend(bind_problem(Some(bind)));
                if let Some(first) = numbers.insert(n, i) {
                    problems.push(Problem::new(
                        "port/number",
                        format!("port {n} already has a listener in spec.egress[{first}]"),
                        "declare each outbound port once",
                    ));
                }
            }
        }
        for problem in problems {
            problem.push(m, "sidecar-egress-port", &at, out);
        }
    }
}
