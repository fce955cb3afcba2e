//! The Prometheus endpoint of `lbctl daemon --metrics ADDR:PORT`: per
//! virtual service and real server, the counters of `ipvsadm -L --stats`
//! (connections, packets, bytes; direct routing sees no replies, so only
//! incoming ones), the ActiveConn/InActConn gauges, the weight and the
//! daemon's health verdict, in the text exposition format (version 0.0.4).
//!
//! Off by default; a non-loopback address is refused unless
//! `--metrics-public` says it is wanted (the endpoint has no
//! authentication).
//!
//! The endpoint never holds up health checking: it is bound in the
//! background (an address that cannot be bound is logged and tried again
//! every [`BIND_RETRY`]), serves at most [`MAX_CONNECTIONS`] clients at once
//! (the others wait in the kernel's backlog, holding no descriptor of the
//! daemon), gives each [`REQUEST_TIMEOUT`] to send its request and
//! [`WRITE_TIMEOUT`] to take the answer, and reads the table once for
//! scrapes that come together.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
};

use super::{
    Logger,
    runner::CheckCounters,
    status::{Status, service_text},
};
use crate::{Pins, Table, addr::addr_port, model::ServiceView};

/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a scraper may take to take the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most scrapes served at once; more wait for one to end.
pub const MAX_CONNECTIONS: usize = 64;
/// How long one read of the table answers further scrapes.
const REUSE: Duration = Duration::from_secs(1);
/// How often a metrics address that cannot be bound is tried again.
pub const BIND_RETRY: Duration = Duration::from_secs(5);

/// Refuses a non-loopback `addr` unless `public`.
pub fn check_addr(addr: &SocketAddr, public: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || public {
        Ok(())
    } else {
        Err(format!(
            "--metrics {addr} is not a loopback address: the endpoint has no authentication; \
             add --metrics-public to serve it there anyway"
        ))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family<'a> {
    name: &'a str,
    kind: &'a str,
    help: &'a str,
    samples: Vec<(String, u64)>,
}

/// The exposition text from the table's `views` and the daemon's status
/// (only the daemon's services are shown).
pub fn render(views: &[ServiceView], status: &Status) -> String {
    let fam = |name, kind, help| Family {
        name,
        kind,
        help,
        samples: Vec::new(),
    };
    let mut svc_conns = fam(
        "lbctl_service_connections_total",
        "counter",
        "Connections scheduled to the virtual service.",
    );
    let mut svc_pkts = fam(
        "lbctl_service_packets_total",
        "counter",
        "Packets from clients forwarded for the virtual service.",
    );
    let mut svc_bytes = fam(
        "lbctl_service_bytes_total",
        "counter",
        "Bytes from clients forwarded for the virtual service.",
    );
    let mut conns = fam(
        "lbctl_real_connections_total",
        "counter",
        "Connections scheduled to the real server.",
    );
    let mut pkts = fam(
        "lbctl_real_packets_total",
        "counter",
        "Packets from clients forwarded to the real server.",
    );
    let mut bytes = fam(
        "lbctl_real_bytes_total",
        "counter",
        "Bytes from clients forwarded to the real server.",
    );
    let mut active = fam(
        "lbctl_real_active_connections",
        "gauge",
        "Connections in an active state (ActiveConn).",
    );
    let mut inactive = fam(
        "lbctl_real_inactive_connections",
        "gauge",
        "Connections in another state (InActConn).",
    );
    let mut weight = fam(
        "lbctl_real_weight",
        "gauge",
        "Weight of the real server in the table (0: quiescent).",
    );
    let mut up = fam(
        "lbctl_real_up",
        "gauge",
        "1 when the daemon's checks find the real server up, else 0.",
    );
    let mut fails = fam(
        "lbctl_real_check_failures",
        "gauge",
        "Consecutive failed checks of the real server.",
    );
    let mut fallback = fam(
        "lbctl_fallback_active",
        "gauge",
        "1 while the fallback server is in the service.",
    );
    for s in &status.services {
        let svc = format!("{} {}", s.proto, service_text(&s.proto, s.addr, s.port));
        let sl = format!("service=\"{}\"", escape(&svc));
        let view = views.iter().find(|v| {
            v.spec.id.proto.name() == s.proto
                && v.spec.id.addr == s.addr
                && v.spec.id.port == s.port
        });
        if let Some(v) = view {
            svc_conns.samples.push((format!("{{{sl}}}"), v.stats.conns));
            svc_pkts.samples.push((format!("{{{sl}}}"), v.stats.inpkts));
            svc_bytes
                .samples
                .push((format!("{{{sl}}}"), v.stats.inbytes));
        }
        for r in &s.reals {
            let labels = format!("{{{sl},real=\"{}\"}}", addr_port(r.addr, r.port));
            up.samples.push((labels.clone(), r.up as u64));
            fails.samples.push((labels.clone(), r.failures.into()));
            let rv = view.and_then(|v| {
                v.reals
                    .iter()
                    .find(|x| x.spec.id.addr == r.addr && x.spec.id.port == r.port)
            });
            if let Some(rv) = rv {
                conns.samples.push((labels.clone(), rv.stats.conns));
                pkts.samples.push((labels.clone(), rv.stats.inpkts));
                bytes.samples.push((labels.clone(), rv.stats.inbytes));
                active.samples.push((labels.clone(), rv.active_conns));
                inactive.samples.push((labels.clone(), rv.inactive_conns));
                weight.samples.push((labels, rv.spec.weight.into()));
            }
        }
        if let Some(f) = &s.fallback {
            let labels = format!("{{{sl},real=\"{}\"}}", addr_port(f.addr, f.port));
            fallback.samples.push((labels, f.weight.is_some() as u64));
        }
    }
    let mut out = String::new();
    for f in [
        svc_conns, svc_pkts, svc_bytes, conns, pkts, bytes, active, inactive, weight, up, fails,
        fallback,
    ] {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, v) in f.samples {
            let _ = writeln!(out, "{}{labels} {v}", f.name);
        }
    }
    out
}

/// The endpoint's state: the daemon's latest status, the pin directory,
/// the check counters, and the last answer (shared by scrapes that come
/// together).
pub struct Endpoint {
    status: watch::Receiver<Arc<Status>>,
    pin_dir: PathBuf,
    counters: Arc<CheckCounters>,
    last: tokio::sync::Mutex<Option<Rendered>>,
    connections: Arc<Semaphore>,
}

/// An answer made from one read of the table.
struct Rendered {
    at: Instant,
    status: Arc<Status>,
    answer: Arc<(&'static str, String)>,
}

impl Endpoint {
    pub fn new(
        status: watch::Receiver<Arc<Status>>,
        pin_dir: PathBuf,
        counters: Arc<CheckCounters>,
    ) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            status,
            pin_dir,
            counters,
            last: tokio::sync::Mutex::new(None),
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        })
    }

    /// The status code and body of `/metrics`: one table read at a time,
    /// on a blocking thread; scrapes within [`REUSE`] of the last read (and
    /// with the same status) get its answer.
    async fn body(&self) -> Arc<(&'static str, String)> {
        let status = self.status.borrow().clone();
        let mut last = self.last.lock().await;
        if let Some(r) = last.as_ref()
            && r.at.elapsed() < REUSE
            && Arc::ptr_eq(&r.status, &status)
        {
            return r.answer.clone();
        }
        let pin_dir = self.pin_dir.clone();
        let st = status.clone();
        let local_errors = self.counters.local_errors.load(Ordering::Relaxed);
        let checks = self.counters.checks.load(Ordering::Relaxed);
        let late = self.counters.late.load(Ordering::Relaxed);
        let answer = tokio::task::spawn_blocking(move || {
            match Pins::open(&pin_dir, None).and_then(|p| Table::new(p).views(None)) {
                Ok(v) => {
                    let mut text = render(&v, &st);
                    render_checks(&mut text, checks, local_errors, late);
                    ("200 OK", text)
                }
                Err(e) => (
                    "503 Service Unavailable",
                    format!("reading the table: {e}\n"),
                ),
            }
        })
        .await
        .unwrap_or_else(|e| ("500 Internal Server Error", format!("{e}\n")));
        let answer = Arc::new(answer);
        *last = Some(Rendered {
            at: Instant::now(),
            status,
            answer: answer.clone(),
        });
        answer
    }
}

/// The daemon's own counters.
fn render_checks(out: &mut String, checks: u64, local_errors: u64, late: u64) {
    for (name, help, v) in [
        (
            "lbctl_checks_total",
            "Checks of real servers made, including those that could not be made.",
            checks,
        ),
        (
            "lbctl_check_local_errors_total",
            "Checks that could not be made for a reason of the director's own (no file \
             descriptor, buffer or local port); retried, never counted against the real server.",
            local_errors,
        ),
        (
            "lbctl_checks_late_total",
            "Checks that waited longer than their interval for a check slot (all busy).",
            late,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {v}");
    }
}

/// Binds `addr` and serves the endpoint, until the task is dropped. A bind
/// that fails (the port is taken, the address is not there yet) is logged
/// and tried again every [`BIND_RETRY`]: the daemon goes on checking and
/// installing real servers meanwhile.
pub async fn serve(addr: SocketAddr, endpoint: Arc<Endpoint>, log: Logger) {
    let mut failed: Option<String> = None;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                let e = e.to_string();
                if failed.as_ref() != Some(&e) {
                    log.log(&format!(
                        "Error: cannot serve metrics on {addr}: {e}; health checking goes on \
                         without them, and the address is tried again every {}s",
                        BIND_RETRY.as_secs()
                    ));
                    failed = Some(e);
                }
                tokio::time::sleep(BIND_RETRY).await;
            }
        }
    };
    log.log(&format!(
        "Serving metrics on http://{addr}/metrics (at most {MAX_CONNECTIONS} connections at once)"
    ));
    loop {
        // At the cap, further clients wait in the kernel's backlog and
        // hold no descriptor of the daemon.
        let Ok(slot) = endpoint.connections.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // EMFILE and the like: give the daemon time to close some.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let _ = answer(stream, &endpoint).await;
            drop(slot);
        });
    }
}

async fn answer(mut s: TcpStream, endpoint: &Endpoint) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    if tokio::time::timeout(REQUEST_TIMEOUT, read).await.is_err() {
        return Ok(());
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let shared;
    let (code, body) = if method != "GET" && method != "HEAD" {
        ("405 Method Not Allowed", "only GET\n")
    } else if path != "/metrics" && path != "/" {
        ("404 Not Found", "try /metrics\n")
    } else {
        shared = endpoint.body().await;
        (shared.0, shared.1.as_str())
    };
    let mut resp = format!(
        "HTTP/1.0 {code}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        resp.push_str(body);
    }
    let write = async {
        s.write_all(resp.as_bytes()).await?;
        s.shutdown().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status::{FallbackStatus, RealStatus, ServiceStatus};
    use crate::model::{
        Fwd, Proto, Rates, RealId, RealSpec, RealView, Sched, ServiceId, ServiceSpec, Stats,
        Thresholds,
    };

    #[test]
    fn loopback_only_unless_public() {
        assert!(check_addr(&"127.0.0.1:9469".parse().unwrap(), false).is_ok());
        assert!(check_addr(&"[::1]:9469".parse().unwrap(), false).is_ok());
        let e = check_addr(&"0.0.0.0:9469".parse().unwrap(), false).unwrap_err();
        assert!(e.contains("--metrics-public"), "{e}");
        assert!(check_addr(&"198.51.100.2:9469".parse().unwrap(), true).is_ok());
    }

    /// The exposition of one service `vip`:80 with real `rs`:80 and
    /// fallback `fb`:80.
    fn exposition(vip: &str, rs: &str, fb: &str) -> String {
        let id = ServiceId {
            proto: Proto::Tcp,
            addr: vip.parse().unwrap(),
            port: 80,
        };
        let stats = |c, p, b| Stats {
            conns: c,
            inpkts: p,
            inbytes: b,
            outpkts: 0,
            outbytes: 0,
        };
        let views = vec![ServiceView {
            spec: ServiceSpec {
                id,
                sched: Sched::Wrr,
                persistent: None,
                netmask: "255.255.255.255".parse().unwrap(),
                one_packet: false,
            },
            stats: stats(7, 70, 7000),
            rates: Rates::default(),
            reals: vec![RealView {
                spec: RealSpec {
                    id: RealId {
                        addr: rs.parse().unwrap(),
                        port: 80,
                    },
                    fwd: Fwd::Route,
                    weight: 0,
                    thresholds: Thresholds::NONE,
                },
                active_conns: 1,
                inactive_conns: 2,
                persist_conns: 0,
                stats: stats(7, 70, 7000),
                rates: Rates::default(),
            }],
        }];
        let status = Status {
            pid: 1,
            config: "/x.cf".into(),
            pin_dir: "/sys/fs/bpf/lb".into(),
            started: 0,
            updated: 0,
            services: vec![ServiceStatus {
                proto: "TCP".into(),
                addr: id.addr,
                port: 80,
                scheduler: "wrr".into(),
                persistent: None,
                checktype: "connect".into(),
                service: "none".into(),
                present: true,
                quiescent: true,
                reals: vec![RealStatus {
                    addr: rs.parse().unwrap(),
                    port: 80,
                    check_port: 80,
                    configured_weight: 1,
                    weight: Some(0),
                    up: false,
                    failures: 2,
                    failurecount: 2,
                    last_check: None,
                }],
                fallback: Some(FallbackStatus {
                    addr: fb.parse().unwrap(),
                    port: 80,
                    weight: Some(1),
                }),
            }],
        };
        render(&views, &status)
    }

    #[test]
    fn exposition_text() {
        let text = exposition("203.0.113.10", "198.51.100.11", "198.51.100.20");
        for line in [
            "# TYPE lbctl_service_connections_total counter",
            "lbctl_service_connections_total{service=\"TCP 203.0.113.10:80\"} 7",
            "lbctl_service_bytes_total{service=\"TCP 203.0.113.10:80\"} 7000",
            "lbctl_real_packets_total{service=\"TCP 203.0.113.10:80\",real=\"198.51.100.11:80\"} 70",
            "lbctl_real_active_connections{service=\"TCP 203.0.113.10:80\",real=\"198.51.100.11:80\"} 1",
            "lbctl_real_inactive_connections{service=\"TCP 203.0.113.10:80\",real=\"198.51.100.11:80\"} 2",
            "lbctl_real_weight{service=\"TCP 203.0.113.10:80\",real=\"198.51.100.11:80\"} 0",
            "lbctl_real_up{service=\"TCP 203.0.113.10:80\",real=\"198.51.100.11:80\"} 0",
            "lbctl_real_check_failures{service=\"TCP 203.0.113.10:80\",real=\"198.51.100.11:80\"} 2",
            "lbctl_fallback_active{service=\"TCP 203.0.113.10:80\",real=\"198.51.100.20:80\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
        // Every sample line belongs to a declared family.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{l}");
        }
    }

    /// IPv6 services and reals are labelled as ipvsadm prints them:
    /// `[2001:db8::1]:80`.
    #[test]
    fn exposition_labels_ipv6_addresses_in_brackets() {
        let text = exposition("2001:db8::1", "2001:db8::11", "2001:db8::20");
        for line in [
            "lbctl_service_connections_total{service=\"TCP [2001:db8::1]:80\"} 7",
            "lbctl_real_weight{service=\"TCP [2001:db8::1]:80\",real=\"[2001:db8::11]:80\"} 0",
            "lbctl_real_up{service=\"TCP [2001:db8::1]:80\",real=\"[2001:db8::11]:80\"} 0",
            "lbctl_fallback_active{service=\"TCP [2001:db8::1]:80\",real=\"[2001:db8::20]:80\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
    }
}
