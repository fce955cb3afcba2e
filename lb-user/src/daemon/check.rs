//! The checks of real servers, as ldirectord does them (`check_connect`,
//! `check_http`, `check_simpletcp`, `check_none`, the combined `checktype=N`
//! and `maintenancedir`), each bounded by its timeout so that a hung server
//! never holds anything else up.
//!
//! `service=https` is the HTTP check over TLS (rustls, ring): like
//! ldirectord's `LWP::UserAgent(ssl_opts => { verify_hostname => 0 })` the
//! server's certificate is not verified (a self-signed or expired one
//! passes; the handshake's signatures are still checked); the SNI name is
//! `virtualhost` when it is a DNS name, else none is sent (the real's
//! address, which TLS does not carry as SNI, as IO::Socket::SSL).
//!
//! Differences from ldirectord: HTTP checks speak HTTP/1.0 with
//! `Connection: close` and do not follow redirects (LWP follows them), so a
//! 3xx answer is a failure; `receive` is a Rust `regex` (Perl look-arounds
//! and back-references are refused when the configuration is read).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
    time::Duration,
};

use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::WebPkiSupportedAlgorithms,
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;

use super::{
    config::{Check, CheckService, CheckType, Real, Receive},
    health::Outcome,
};
use crate::resolve::Resolver;

/// Most bytes of an answer that a check reads.
const MAX_ANSWER: u64 = 1 << 20;
/// `checktype=N`: the connect counter that forces a negotiate check
/// (ldirectord's 999999).
pub const NEGOTIATE_NEXT: u32 = u32::MAX;

/// Everything needed to check one real server.
#[derive(Clone, Debug)]
pub struct Job {
    pub check: Check,
    pub real: Real,
    pub maintenancedir: Option<PathBuf>,
}

impl Job {
    /// One check. `connects` is the combined check's counter (start with
    /// [`NEGOTIATE_NEXT`]).
    pub async fn run(&self, connects: &mut u32) -> Outcome {
        if let Some(dir) = &self.maintenancedir
            && let Some(file) = maintenance_file(dir, &self.real, Resolver::system())
        {
            return Outcome {
                force: true,
                ..Outcome::failed(format!("Server in maintenance ({})", file.display()))
            };
        }
        match self.check.kind {
            CheckType::On => Outcome::ok("checktype=on"),
            CheckType::Off => Outcome::ok("checktype=off"),
            CheckType::Connect => self.connect().await,
            // Boxed: a negotiate check (TLS state) is far larger than a
            // connect check, and thousands of checks may be in flight.
            CheckType::Negotiate => Box::pin(self.negotiate()).await,
            CheckType::Combined(n) => {
                if *connects >= n {
                    let o = Box::pin(self.negotiate()).await;
                    if o.ok {
                        *connects = 0;
                    }
                    o
                } else {
                    let o = self.connect().await;
                    if o.ok {
                        *connects += 1;
                    } else {
                        *connects = NEGOTIATE_NEXT;
                    }
                    o
                }
            }
        }
    }

    async fn connect(&self) -> Outcome {
        connect_check(self.real.check_addr(), self.check.checktimeout).await
    }

    async fn negotiate(&self) -> Outcome {
        let t = self.check.negotiatetimeout;
        let request = self.real.request.as_deref().unwrap_or(&self.check.request);
        let receive = if self.real.request.is_some() {
            self.real.receive.as_ref()
        } else {
            self.check.receive.as_ref()
        };
        match self.check.service {
            CheckService::None => Outcome::ok("service=none"),
            CheckService::Http | CheckService::Https => {
                let tls = self.check.service == CheckService::Https;
                let (target, host, path) =
                    match http_target(request, &self.real, Resolver::system()) {
                        Ok(t) => t,
                        Err(e) => return Outcome::failed(e),
                    };
                let sni = self.check.virtualhost.as_deref().and_then(sni_name);
                let host = self.check.virtualhost.clone().unwrap_or(host);
                let q = HttpQuery {
                    host: &host,
                    method: &self.check.httpmethod,
                    path: &path,
                    receive,
                };
                if tls {
                    bounded(t, https_check(target, sni, q)).await
                } else {
                    bounded(t, http_check(target, q)).await
                }
            }
            CheckService::SimpleTcp => {
                bounded(t, simpletcp_check(self.real.check_addr(), request, receive)).await
            }
        }
    }
}

async fn bounded(t: Duration, f: impl Future<Output = Outcome>) -> Outcome {
    match tokio::time::timeout(t, f).await {
        Ok(o) => o,
        Err(_) => Outcome::failed(format!("no answer within {}s", t.as_secs())),
    }
}

/// A TCP connection to `addr` within `t`. The connection is then reset
/// rather than closed (`SO_LINGER` 0, as HAProxy ends its checks): no FIN
/// exchange, and no TIME_WAIT socket left on the director for each check.
pub async fn connect_check(addr: SocketAddr, t: Duration) -> Outcome {
    match tokio::time::timeout(t, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_zero_linger();
            Outcome::ok(format!("connected to {addr}"))
        }
        Ok(Err(e)) => connect_failed(addr, &e),
        Err(_) => Outcome::failed(format!(
            "connect to {addr}: no answer within {}s",
            t.as_secs()
        )),
    }
}

/// Whether `e` is the director's own trouble rather than the real server's:
/// out of file descriptors (`EMFILE`, `ENFILE`), of buffers or memory
/// (`ENOBUFS`, `ENOMEM`), of local ports (`EADDRNOTAVAIL`, `EAGAIN`). A
/// check failing so says nothing about the real server.
pub fn is_local_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::EADDRNOTAVAIL
                | libc::EAGAIN
        )
    )
}

/// The outcome of a failed connect: a local error ([`is_local_error`]), or
/// a failure of the real server.
pub fn connect_failed(addr: SocketAddr, e: &std::io::Error) -> Outcome {
    let detail = format!("connect to {addr}: {e}");
    if is_local_error(e) {
        Outcome::local(detail)
    } else {
        Outcome::failed(detail)
    }
}

/// Where an HTTP check goes: `request` as a path on the real server's check
/// port, or an absolute `http[s]://host[:port]/path` (ldirectord's per-real
/// override; an IPv6 host in brackets, `http://[2001:db8::11]:8080/x`).
/// Returns (address, default Host header, path). The default Host header
/// is the real's address as ldirectord's URL has it: an IPv6 one in
/// brackets (`Host: [2001:db8::11]`, as LWP sends for
/// `http://[2001:db8::11]:80/`).
pub fn http_target(
    request: &str,
    real: &Real,
    names: &Resolver,
) -> Result<(SocketAddr, String, String), String> {
    let (rest, default_port) = match request.strip_prefix("http://") {
        Some(rest) => (Some(rest), 80),
        None => (request.strip_prefix("https://"), 443),
    };
    let Some(rest) = rest else {
        return Ok((
            real.check_addr(),
            url_host(real.id.addr),
            request.to_string(),
        ));
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        _ if hostport.ends_with(']') => (hostport, default_port),
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad port in {request}"))?,
        ),
        None => (hostport, default_port),
    };
    let addr = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    };
    // A name: from /etc/hosts, in the real server's family first.
    let v4 = || names.host_addr(host).map(IpAddr::V4);
    let v6 = || names.host_addr6(host).map(IpAddr::V6);
    let addr = match real.id.addr {
        IpAddr::V4(_) => addr.or_else(v4).or_else(v6),
        IpAddr::V6(_) => addr.or_else(v6).or_else(v4),
    }
    .ok_or_else(|| format!("cannot resolve {host} (from {request}) in /etc/hosts"))?;
    Ok((SocketAddr::new(addr, port), host.to_string(), path))
}

/// An address as a URL's host has it: an IPv6 one in brackets.
pub fn url_host(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// The first line of an answer, for messages.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().next().unwrap_or("").trim().to_string()
}

/// Judges an HTTP answer: a 2xx status and, when `receive` is given, a body
/// matching it.
pub fn judge_http(answer: &[u8], receive: Option<&Receive>) -> Outcome {
    if answer.is_empty() {
        return Outcome::failed("connection closed without an answer");
    }
    let status = first_line(answer);
    let mut words = status.split_whitespace();
    let proto_ok = words.next().is_some_and(|p| p.starts_with("HTTP/"));
    let code = words.next().and_then(|c| c.parse::<u16>().ok());
    let (Some(code), true) = (code, proto_ok) else {
        return Outcome::failed(format!("not an HTTP answer: {status:?}"));
    };
    if !(200..300).contains(&code) {
        return Outcome::failed(status);
    }
    let body = find_body(answer);
    match receive {
        Some(r) if !perl_match(&r.regex, &String::from_utf8_lossy(body)) => {
            Outcome::failed(format!(
                "{status}, but the body does not match receive \"{}\"",
                r.source
            ))
        }
        _ => Outcome::ok(status),
    }
}

/// Perl's `/re/` without flags: `$` also matches before a final newline,
/// which Rust's `$` does not, so "^yes$" must match "yes\n" as it does for
/// ldirectord.
fn perl_match(re: &regex::Regex, text: &str) -> bool {
    re.is_match(text) || text.strip_suffix('\n').is_some_and(|t| re.is_match(t))
}

fn find_body(answer: &[u8]) -> &[u8] {
    for (sep, len) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
        if let Some(i) = answer.windows(len).position(|w| w == sep) {
            return &answer[i + len..];
        }
    }
    &[]
}

/// What an HTTP check asks.
#[derive(Clone, Copy)]
struct HttpQuery<'a> {
    host: &'a str,
    method: &'a str,
    path: &'a str,
    receive: Option<&'a Receive>,
}

async fn http_check(addr: SocketAddr, q: HttpQuery<'_>) -> Outcome {
    match TcpStream::connect(addr).await {
        Ok(s) => http_exchange(s, addr, q).await,
        Err(e) => connect_failed(addr, &e),
    }
}

/// The SNI name for `virtualhost` (its port, if any, dropped): a DNS name,
/// or `None` for an address or something TLS cannot carry (then the check
/// goes ahead without SNI rather than failing).
pub fn sni_name(virtualhost: &str) -> Option<ServerName<'static>> {
    let host = match virtualhost.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => virtualhost,
    };
    match ServerName::try_from(host.to_string()) {
        Ok(n @ ServerName::DnsName(_)) => Some(n),
        _ => None,
    }
}

async fn https_check(
    addr: SocketAddr,
    sni: Option<ServerName<'static>>,
    q: HttpQuery<'_>,
) -> Outcome {
    let tcp = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return connect_failed(addr, &e),
    };
    // Without a name rustls sends no SNI for an address.
    let name = sni.unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
    match TlsConnector::from(tls_config()).connect(name, tcp).await {
        Ok(s) => http_exchange(s, addr, q).await,
        Err(e) => Outcome::failed(format!("TLS handshake with {addr}: {e}")),
    }
}

async fn http_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    addr: SocketAddr,
    q: HttpQuery<'_>,
) -> Outcome {
    let HttpQuery {
        host,
        method,
        path,
        receive,
    } = q;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: lbctl-daemon\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = s.write_all(request.as_bytes()).await {
        return Outcome::failed(format!("sending the request to {addr}: {e}"));
    }
    if let Err(e) = s.flush().await {
        return Outcome::failed(format!("sending the request to {addr}: {e}"));
    }
    let mut answer = Vec::new();
    // A TLS server that closes without close_notify still gave its answer.
    if let Err(e) = (&mut s).take(MAX_ANSWER).read_to_end(&mut answer).await
        && answer.is_empty()
    {
        return Outcome::failed(format!("reading the answer of {addr}: {e}"));
    }
    judge_http(&answer, receive)
}

/// The TLS client of https checks: ring, TLS 1.2 and 1.3, no certificate
/// verification (ldirectord's `verify_hostname => 0`), made once.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AnyCertificate(provider.signature_verification_algorithms));
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Accepts any certificate; checks the handshake's signatures with it.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// ldirectord's simpletcp: the request (its leading `/` dropped, `\n`
/// turned into newlines) is sent, the sending side shut, and a line of the
/// answer must match `receive`.
async fn simpletcp_check(addr: SocketAddr, request: &str, receive: Option<&Receive>) -> Outcome {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return connect_failed(addr, &e),
    };
    let text = request
        .strip_prefix('/')
        .unwrap_or(request)
        .replace("\\n", "\n");
    if let Err(e) = s.write_all(text.as_bytes()).await {
        return Outcome::failed(format!("sending the request to {addr}: {e}"));
    }
    let _ = s.shutdown().await;
    let mut answer = Vec::new();
    let _ = (&mut s).take(MAX_ANSWER).read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let matched = match receive {
        Some(r) => text.split_inclusive('\n').any(|l| perl_match(&r.regex, l)),
        None => !text.is_empty(),
    };
    if matched {
        Outcome::ok(first_line(&answer))
    } else if answer.is_empty() {
        Outcome::failed("connection closed without an answer")
    } else {
        Outcome::failed(format!(
            "no line of the answer matches receive ({:?})",
            first_line(&answer)
        ))
    }
}

/// ldirectord's `_check_real_for_maintenance`: the first of `IP:PORT`, `IP`,
/// `NAME:PORT`, `NAME`, `SHORT:PORT`, `SHORT` present in `dir` (NAME from
/// `/etc/hosts`, SHORT its first label; PORT as the `real=` line gave it;
/// an IPv6 IP in brackets, `[2001:db8::11]:80`, as ldirectord names it).
pub fn maintenance_file(dir: &Path, real: &Real, names: &Resolver) -> Option<PathBuf> {
    let ip = url_host(real.id.addr);
    let port = real.port_given;
    let mut candidates = vec![format!("{ip}:{port}"), ip.clone()];
    if let Some(name) = names.host_name(real.id.addr) {
        candidates.push(format!("{name}:{port}"));
        candidates.push(name.to_string());
        if let Some((short, _)) = name.split_once('.') {
            candidates.push(format!("{short}:{port}"));
            candidates.push(short.to_string());
        }
    }
    candidates
        .into_iter()
        .map(|c| dir.join(c))
        .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RealId;
    use regex::Regex;

    fn receive(s: &str) -> Receive {
        Receive {
            source: s.into(),
            regex: Regex::new(s).unwrap(),
        }
    }

    fn real(addr: &str, port_given: u16, check_port: u16) -> Real {
        Real {
            line: 1,
            id: RealId {
                addr: addr.parse().unwrap(),
                port: 80,
            },
            fwd: crate::model::Fwd::Route,
            port_given,
            weight: 1,
            thresholds: crate::model::Thresholds::NONE,
            check_port,
            request: None,
            receive: None,
        }
    }

    #[test]
    fn http_answers_are_judged_as_ldirectord_does() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nrs1\n";
        assert!(judge_http(ok, None).ok);
        assert_eq!(judge_http(ok, None).detail, "HTTP/1.0 200 OK");
        assert!(judge_http(ok, Some(&receive("^rs[0-9]"))).ok);
        // Perl's `$` matches before the final newline.
        assert!(judge_http(ok, Some(&receive("^rs1$"))).ok);
        assert!(!judge_http(ok, Some(&receive("^rs$"))).ok);
        let miss = judge_http(ok, Some(&receive("Test Page")));
        assert!(!miss.ok);
        assert!(
            miss.detail.contains("does not match receive \"Test Page\""),
            "{}",
            miss.detail
        );
        // The status line is not the body.
        assert!(!judge_http(ok, Some(&receive("200 OK"))).ok);
        assert!(!judge_http(b"HTTP/1.1 503 Service Unavailable\r\n\r\nrs1", None).ok);
        assert!(!judge_http(b"HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\n", None).ok);
        assert!(!judge_http(b"SSH-2.0-OpenSSH\r\n", None).ok);
        assert!(!judge_http(b"", None).ok);
        assert!(judge_http(b"HTTP/1.1 204 No Content\n\n", None).ok);
    }

    #[test]
    fn http_targets() {
        let names = Resolver::from_text("198.51.100.50 web1.example.org web1\n", "");
        let r = real("198.51.100.11", 0, 8080);
        let (a, host, path) = http_target("/index.html", &r, &names).unwrap();
        assert_eq!(a, "198.51.100.11:8080".parse().unwrap());
        assert_eq!(
            (host.as_str(), path.as_str()),
            ("198.51.100.11", "/index.html")
        );
        let (a, host, path) = http_target("http://web1:81/health", &r, &names).unwrap();
        assert_eq!(a, "198.51.100.50:81".parse().unwrap());
        assert_eq!((host.as_str(), path.as_str()), ("web1", "/health"));
        let (a, _, path) = http_target("http://198.51.100.60", &r, &names).unwrap();
        assert_eq!(
            (a, path.as_str()),
            ("198.51.100.60:80".parse().unwrap(), "/")
        );
        assert!(http_target("http://nowhere/x", &r, &names).is_err());
    }

    #[test]
    fn maintenance_files_are_found_by_address_and_name() {
        let dir = std::env::temp_dir().join(format!("lbctl-maint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = Resolver::from_text("198.51.100.11 rs1.example.org\n", "");
        let r = real("198.51.100.11", 80, 80);
        assert_eq!(maintenance_file(&dir, &r, &names), None);
        for f in ["rs1", "rs1.example.org:80", "198.51.100.11"] {
            std::fs::write(dir.join(f), "").unwrap();
            assert_eq!(maintenance_file(&dir, &r, &names), Some(dir.join(f)), "{f}");
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        // Another port is another service.
        std::fs::write(dir.join("198.51.100.11:443"), "").unwrap();
        assert_eq!(maintenance_file(&dir, &r, &names), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn job(kind: CheckType, port: u16) -> Job {
        Job {
            check: Check {
                kind,
                service: CheckService::Http,
                httpmethod: "GET".into(),
                request: "/".into(),
                receive: Some(receive("^ok$")),
                virtualhost: Some("www.example.org".into()),
                checktimeout: Duration::from_secs(2),
                negotiatetimeout: Duration::from_secs(2),
            },
            real: real("127.0.0.1", 0, port),
            maintenancedir: None,
        }
    }

    /// A one-shot HTTP server on loopback answering `answer`; returns the
    /// port and the request it saw.
    async fn serve_once(answer: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&got).into_owned()
        });
        (port, h)
    }

    #[tokio::test]
    async fn negotiate_sends_the_request_with_the_virtualhost() {
        let (port, seen) = serve_once("HTTP/1.0 200 OK\r\n\r\nok\n").await;
        let mut c = NEGOTIATE_NEXT;
        let o = job(CheckType::Negotiate, port).run(&mut c).await;
        assert!(o.ok, "{o:?}");
        let req = seen.await.unwrap();
        assert!(req.starts_with("GET / HTTP/1.0\r\n"), "{req}");
        assert!(req.contains("\r\nHost: www.example.org\r\n"), "{req}");
    }

    #[tokio::test]
    async fn a_hung_server_fails_within_the_timeout() {
        // Accepts (the kernel does) but never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let mut j = job(CheckType::Negotiate, port);
        j.check.negotiatetimeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let o = j.run(&mut 0).await;
        assert!(!o.ok);
        assert!(o.detail.contains("no answer within"), "{o:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(l);
    }

    #[tokio::test]
    async fn connect_and_combined_checks() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(job(CheckType::Connect, port).run(&mut 0).await.ok);
        drop(l);
        let o = job(CheckType::Connect, port).run(&mut 0).await;
        assert!(!o.ok && o.detail.contains("refused"), "{o:?}");

        // checktype=2: negotiate first, then two connects, then negotiate.
        let (port, _seen) = serve_once("HTTP/1.0 200 OK\r\n\r\nok\n").await;
        let j = job(CheckType::Combined(2), port);
        let mut c = NEGOTIATE_NEXT;
        assert!(j.run(&mut c).await.ok);
        assert_eq!(c, 0);
        // The one-shot server is gone: a connect fails and forces the next
        // check to negotiate.
        let o = j.run(&mut c).await;
        assert!(!o.ok, "{o:?}");
        assert_eq!(c, NEGOTIATE_NEXT);
    }

    /// TIME_WAIT sockets (state 06) of /proc/net/tcp towards `port`.
    fn time_waits_to(port: u16) -> usize {
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        tcp.lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[3] == "06" && f[2].ends_with(&format!(":{port:04X}"))
            })
            .count()
    }

    #[tokio::test]
    async fn a_connect_check_leaves_no_time_wait_socket() {
        // The check resets its connection: thousands of checks a second
        // would otherwise leave as many TIME_WAIT sockets on the director.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
        for _ in 0..20 {
            assert!(connect_check(addr, Duration::from_secs(2)).await.ok);
            let (mut s, _) = l.accept().await.unwrap();
            // The server sees a reset, not an orderly close.
            let mut buf = [0u8; 1];
            let r = s.read(&mut buf).await;
            assert!(r.is_err(), "{r:?}");
        }
        assert_eq!(time_waits_to(port), 0);
    }

    #[tokio::test]
    async fn simpletcp_matches_a_line() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let srv = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(b"+OK hello\r\nstatus: green\r\n")
                .await
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let mut j = job(CheckType::Negotiate, port);
        j.check.service = CheckService::SimpleTcp;
        j.check.request = "/PING\\n".into();
        j.check.receive = Some(receive("^status: green"));
        let o = j.run(&mut 0).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(srv.await.unwrap(), "PING\n");
    }

    #[test]
    fn local_errors_are_not_failures_of_the_real() {
        let addr: SocketAddr = "198.51.100.11:80".parse().unwrap();
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EADDRNOTAVAIL,
        ] {
            let o = connect_failed(addr, &std::io::Error::from_raw_os_error(errno));
            assert!(o.local && !o.ok, "{errno}: {o:?}");
            assert!(
                o.detail.starts_with("connect to 198.51.100.11:80: "),
                "{o:?}"
            );
        }
        for errno in [
            libc::ECONNREFUSED,
            libc::EHOSTUNREACH,
            libc::ENETUNREACH,
            libc::ETIMEDOUT,
            libc::ECONNRESET,
        ] {
            let o = connect_failed(addr, &std::io::Error::from_raw_os_error(errno));
            assert!(!o.local && !o.ok, "{errno}: {o:?}");
        }
    }

    #[test]
    fn sni_is_a_dns_name_from_virtualhost_or_none() {
        let dns = |s: &str| match sni_name(s) {
            Some(ServerName::DnsName(d)) => Some(d.as_ref().to_string()),
            _ => None,
        };
        assert_eq!(dns("www.example.org").as_deref(), Some("www.example.org"));
        assert_eq!(
            dns("www.example.org:8443").as_deref(),
            Some("www.example.org")
        );
        assert_eq!(dns("198.51.100.11"), None);
        assert_eq!(dns("2001:db8::1"), None);
        assert_eq!(dns("not a name"), None);
    }

    #[test]
    fn absolute_https_requests_default_to_443() {
        let r = real("198.51.100.11", 0, 443);
        let names = Resolver::new();
        let (a, host, path) = http_target("https://198.51.100.50/x", &r, &names).unwrap();
        assert_eq!(a, "198.51.100.50:443".parse().unwrap());
        assert_eq!((host.as_str(), path.as_str()), ("198.51.100.50", "/x"));
        let (a, _, _) = http_target("http://198.51.100.50/x", &r, &names).unwrap();
        assert_eq!(a.port(), 80);
        let (a, host, path) = http_target("/status", &r, &names).unwrap();
        assert_eq!(a, "198.51.100.11:443".parse().unwrap());
        assert_eq!((host.as_str(), path.as_str()), ("198.51.100.11", "/status"));
    }

    /// An HTTP server on `[::1]` answering `answer` to `n` requests; the
    /// port and the requests it saw.
    async fn serve_v6(
        n: usize,
        answer: &'static str,
    ) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let l = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let h = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..n {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                // (A connect check resets its connection.)
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(answer.as_bytes()).await;
                seen.push(String::from_utf8_lossy(&got).into_owned());
            }
            seen
        });
        (port, h)
    }

    /// Every check type over IPv6, to a real server on `[::1]`: connect,
    /// HTTP (its Host header the bracketed address, as LWP sends for
    /// `http://[::1]:PORT/`), the combined check, simpletcp.
    #[tokio::test]
    async fn checks_reach_an_ipv6_real() {
        let (port, seen) = serve_v6(3, "HTTP/1.0 200 OK\r\n\r\nok\n").await;
        let mut j = job(CheckType::Negotiate, port);
        j.real = real("::1", 0, port);
        j.check.virtualhost = None;
        assert!(j.run(&mut 0).await.ok);
        // An absolute URL with a bracketed address and port.
        j.real.request = Some(format!("http://[::1]:{port}/health"));
        j.real.receive = Some(receive("^ok"));
        assert!(j.run(&mut 0).await.ok);
        j.real.request = None;
        j.real.receive = None;
        // checktype=1: a connect check, then a negotiate one.
        j.check.kind = CheckType::Combined(1);
        let mut c = 0;
        let o = j.run(&mut c).await;
        assert!(
            o.ok && o.detail == format!("connected to [::1]:{port}"),
            "{o:?}"
        );
        let reqs = seen.await.unwrap();
        assert!(reqs[0].contains("\r\nHost: [::1]\r\n"), "{}", reqs[0]);
        assert!(
            reqs[1].starts_with("GET /health HTTP/1.0\r\n") && reqs[1].contains("Host: [::1]\r\n"),
            "{}",
            reqs[1]
        );
        // simpletcp.
        let l = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(b"+OK\r\n").await.unwrap();
        });
        let mut j = job(CheckType::Negotiate, port);
        j.real = real("::1", 0, port);
        j.check.service = CheckService::SimpleTcp;
        j.check.request = "/PING".into();
        j.check.receive = Some(receive("^\\+OK"));
        assert!(j.run(&mut 0).await.ok);
    }

    #[test]
    fn ipv6_http_targets_and_maintenance_files_are_bracketed() {
        let names = Resolver::from_text("2001:db8::50 web6\n198.51.100.50 web6\n", "");
        let r = real("2001:db8::11", 0, 8080);
        let (a, host, path) = http_target("/x", &r, &names).unwrap();
        assert_eq!(a, "[2001:db8::11]:8080".parse().unwrap());
        assert_eq!((host.as_str(), path.as_str()), ("[2001:db8::11]", "/x"));
        let (a, host, _) = http_target("http://[2001:db8::60]:81/y", &r, &names).unwrap();
        assert_eq!(a, "[2001:db8::60]:81".parse().unwrap());
        assert_eq!(host, "[2001:db8::60]");
        let (a, _, _) = http_target("https://[2001:db8::60]/y", &r, &names).unwrap();
        assert_eq!(a, "[2001:db8::60]:443".parse().unwrap());
        // A name: the real's family first.
        let (a, _, _) = http_target("http://web6/", &r, &names).unwrap();
        assert_eq!(a, "[2001:db8::50]:80".parse().unwrap());
        let (a, _, _) = http_target("http://web6/", &real("198.51.100.11", 0, 80), &names).unwrap();
        assert_eq!(a, "198.51.100.50:80".parse().unwrap());
        assert!(http_target("http://[2001:db8::zz]/", &r, &names).is_err());

        let dir = std::env::temp_dir().join(format!("lbctl-maint6-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = real("2001:db8::11", 80, 80);
        for f in ["[2001:db8::11]:80", "[2001:db8::11]"] {
            std::fs::write(dir.join(f), "").unwrap();
            assert_eq!(maintenance_file(&dir, &r, &names), Some(dir.join(f)), "{f}");
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        std::fs::write(dir.join("2001:db8::11"), "").unwrap();
        assert_eq!(maintenance_file(&dir, &r, &names), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
