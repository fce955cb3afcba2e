//! `lb-testsrv`: the real-server side of the end-to-end tests.
//!
//! ```text
//! lb-testsrv --name NAME --listen ADDR:PORT [--listen ADDR:PORT ...] [--udp]
//!            [--tls [--sni-log FILE]] [--body-file FILE]
//! ```
//!
//! - TCP (default), one thread per connection:
//!   - a request whose first line is `HOLD` switches to hold mode: the server answers
//!     `NAME\n` to that line and to every further line until EOF, so a test can keep a
//!     connection open and check that it still reaches the same real server;
//!   - anything else is taken as an HTTP-ish request: the server reads lines until a blank
//!     line, EOF or 2 s, then writes
//!     `HTTP/1.0 200 OK\r\nContent-Length: N\r\nConnection: close\r\n\r\nNAME\n` and closes.
//! - `--body-file FILE`: the HTTP body is FILE's content, read for each request (NAME
//!   while FILE is missing), so a test can change what the server answers.
//! - `--tls`: TCP is HTTPS (no hold mode) with a self-signed certificate made at start
//!   (rcgen, ring) for `localhost`; `--sni-log FILE` appends each connection's SNI name
//!   (`-` without one) to FILE, one line each.
//! - UDP (`--udp`): every datagram is answered with `NAME\n`, sent from the address the
//!   datagram was addressed to (`IP_PKTINFO`, `IPV6_PKTINFO`), so a wildcard bind answers
//!   from the VIP.
//!
//! Binding `0.0.0.0` covers the VIP held on `lo`; binding `[::]` covers both families (a
//! dual-stack socket: IPv4 clients show as IPv4-mapped addresses). The process runs until killed (SIGTERM's
//! default action ends it). Errors go to stderr.

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// How long an HTTP-ish request may take to arrive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest request line or header line read.
const MAX_LINE: usize = 8192;

const USAGE: &str = "usage: lb-testsrv --name NAME --listen ADDR:PORT [--listen ADDR:PORT ...] \
                     [--udp] [--tls [--sni-log FILE]] [--body-file FILE]";

struct Args {
    name: String,
    listen: Vec<SocketAddr>,
    udp: bool,
    tls: bool,
    sni_log: Option<PathBuf>,
    body_file: Option<PathBuf>,
}

/// What every TCP connection needs.
struct Srv {
    name: String,
    tls: Option<Arc<ServerConfig>>,
    sni_log: Option<PathBuf>,
    body_file: Option<PathBuf>,
}

impl Srv {
    fn body(&self) -> String {
        self.body_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_else(|| format!("{}\n", self.name))
    }
}

/// A self-signed certificate for `localhost`, made now, and a TLS server
/// configuration with it (ring).
fn tls_config() -> Result<Arc<ServerConfig>, String> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| format!("certificate: {e}"))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .map_err(|e| format!("TLS: {e}"))?;
    Ok(Arc::new(config))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut name = None;
    let mut listen = Vec::new();
    let mut udp = false;
    let mut tls = false;
    let mut sni_log = None;
    let mut body_file = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--name" => name = Some(args.next().ok_or("--name needs a value")?),
            "--listen" => {
                let v = args.next().ok_or("--listen needs ADDR:PORT")?;
                listen.push(v.parse().map_err(|e| format!("--listen {v}: {e}"))?);
            }
            "--udp" => udp = true,
            "--tls" => tls = true,
            "--sni-log" => sni_log = Some(args.next().ok_or("--sni-log needs a file")?.into()),
            "--body-file" => {
                body_file = Some(args.next().ok_or("--body-file needs a file")?.into())
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let name = name.ok_or_else(|| format!("--name is required\n{USAGE}"))?;
    if name.contains(['\n', '\r']) {
        return Err("--name must be one line".to_owned());
    }
    if listen.is_empty() {
        return Err(format!("--listen is required\n{USAGE}"));
    }
    if sni_log.is_some() && !tls {
        return Err("--sni-log needs --tls".to_owned());
    }
    if tls && udp {
        return Err("--tls is for TCP, not with --udp".to_owned());
    }
    Ok(Args {
        name,
        listen,
        udp,
        tls,
        sni_log,
        body_file,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lb-testsrv: {e}");
            return ExitCode::from(2);
        }
    };
    let name: Arc<str> = Arc::from(args.name.as_str());
    let tls = match args.tls.then(tls_config).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("lb-testsrv {}: {e}", args.name);
            return ExitCode::FAILURE;
        }
    };
    let srv = Arc::new(Srv {
        name: args.name.clone(),
        tls,
        sni_log: args.sni_log.clone(),
        body_file: args.body_file.clone(),
    });
    // Bind everything first so bind errors are reported before anything serves.
    let mut threads = Vec::new();
    for addr in &args.listen {
        let name = Arc::clone(&name);
        let srv = Arc::clone(&srv);
        let spawned = if args.udp {
            UdpSocket::bind(addr).map(|sock| std::thread::spawn(move || serve_udp(&sock, &name)))
        } else {
            TcpListener::bind(addr).map(|l| std::thread::spawn(move || serve_tcp(&l, &srv)))
        };
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                eprintln!("lb-testsrv {}: cannot bind {addr}: {e}", args.name);
                return ExitCode::FAILURE;
            }
        }
    }
    for t in threads {
        // The serve loops only return on fatal errors (already logged).
        let _ = t.join();
    }
    ExitCode::FAILURE
}

fn serve_tcp(listener: &TcpListener, srv: &Arc<Srv>) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let srv = Arc::clone(srv);
                std::thread::spawn(move || {
                    let peer = stream.peer_addr().ok();
                    let done = match &srv.tls {
                        Some(cfg) => handle_tls(stream, &srv, Arc::clone(cfg)),
                        None => handle_tcp(stream, &srv),
                    };
                    match done {
                        // A health check that connects and closes at once.
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::NotConnected | io::ErrorKind::UnexpectedEof
                            ) => {}
                        Err(e) => {
                            eprintln!("lb-testsrv {}: connection from {peer:?}: {e}", srv.name)
                        }
                        Ok(()) => {}
                    }
                });
            }
            Err(e) => eprintln!("lb-testsrv {}: accept: {e}", srv.name),
        }
    }
}

fn http_response(body: &str) -> String {
    format!(
        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// One HTTPS request: the handshake (SNI logged), the request's lines up to
/// a blank one, the answer, close_notify.
fn handle_tls(tcp: TcpStream, srv: &Srv, cfg: Arc<ServerConfig>) -> io::Result<()> {
    tcp.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let conn = ServerConnection::new(cfg).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    if let Some(path) = &srv.sni_log {
        let line = format!("{}\n", tls.conn.server_name().unwrap_or("-"));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(line.as_bytes())?;
    }
    let mut reader = BufReader::new(&mut tls);
    loop {
        let mut line = Vec::new();
        let n = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 || trim_eol(&line).is_empty() {
            break;
        }
    }
    drop(reader);
    tls.write_all(http_response(&srv.body()).as_bytes())?;
    tls.conn.send_close_notify();
    tls.flush()?;
    tls.sock.shutdown(Shutdown::Write)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads one line (without a bound on its content, but at most [`MAX_LINE`] bytes).
/// Returns `Ok(None)` on EOF.
fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    Ok((n > 0).then_some(line))
}

fn handle_tcp(stream: TcpStream, srv: &Srv) -> io::Result<()> {
    let name = srv.name.as_str();
    let mut writer = stream.try_clone()?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut reader = BufReader::new(stream);

    let first = match read_line(&mut reader) {
        Ok(line) => line,
        Err(e) if is_timeout(&e) => None,
        Err(e) => return Err(e),
    };
    if first.as_deref().map(trim_eol) == Some(b"HOLD".as_slice()) {
        return hold(reader, writer, name);
    }
    // Rest of the headers: until a blank line, EOF or the deadline.
    let mut blank_seen = first.as_deref().is_some_and(|l| trim_eol(l).is_empty());
    while first.is_some() && !blank_seen {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        reader.get_ref().set_read_timeout(Some(left))?;
        match read_line(&mut reader) {
            Ok(Some(line)) => blank_seen = trim_eol(&line).is_empty(),
            Ok(None) => break,
            Err(e) if is_timeout(&e) => break,
            Err(e) => return Err(e),
        }
    }
    writer.write_all(http_response(&srv.body()).as_bytes())?;
    writer.flush()?;
    writer.shutdown(Shutdown::Write)
}

/// Hold mode: answer `NAME\n` to the `HOLD` line and to every further line, until EOF.
fn hold(mut reader: BufReader<TcpStream>, mut writer: TcpStream, name: &str) -> io::Result<()> {
    reader.get_ref().set_read_timeout(None)?;
    let answer = format!("{name}\n");
    writer.write_all(answer.as_bytes())?;
    while read_line(&mut reader)?.is_some() {
        writer.write_all(answer.as_bytes())?;
    }
    writer.shutdown(Shutdown::Write)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn serve_udp(sock: &UdpSocket, name: &str) {
    let v6 = sock.local_addr().is_ok_and(|a| a.is_ipv6());
    if let Err(e) = enable_pktinfo(sock, v6) {
        eprintln!("lb-testsrv {name}: packet info: {e}");
        return;
    }
    let answer = format!("{name}\n");
    let mut buf = vec![0u8; 65536];
    loop {
        match recv_with_dst(sock, &mut buf) {
            Ok((peer, dst)) => {
                if let Err(e) = send_from(sock, answer.as_bytes(), &peer, &dst) {
                    eprintln!("lb-testsrv {name}: reply to {peer}: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("lb-testsrv {name}: recvmsg: {e}");
                return;
            }
        }
    }
}

/// `IP_PKTINFO`, or `IPV6_RECVPKTINFO` on an IPv6 socket (which reports the IPv4-mapped
/// destination of an IPv4 datagram on a dual-stack `[::]` socket too).
fn enable_pktinfo(sock: &UdpSocket, v6: bool) -> io::Result<()> {
    use nix::sys::socket::{
        setsockopt,
        sockopt::{Ipv4PacketInfo, Ipv6RecvPacketInfo},
    };
    if v6 {
        setsockopt(sock, Ipv6RecvPacketInfo, &true).map_err(io::Error::from)
    } else {
        setsockopt(sock, Ipv4PacketInfo, &true).map_err(io::Error::from)
    }
}

/// The local address a datagram was sent to.
enum Dst {
    V4(libc::in_addr),
    V6(libc::in6_addr),
}

/// Receives a datagram; returns the sender and the local address it was sent to.
fn recv_with_dst(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(nix::sys::socket::SockaddrStorage, Dst)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut control = nix::cmsg_space!(libc::in6_pktinfo);
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )?;
    let dst = msg
        .cmsgs()?
        .find_map(|c| match c {
            ControlMessageOwned::Ipv4PacketInfo(info) => Some(Dst::V4(info.ipi_addr)),
            ControlMessageOwned::Ipv6PacketInfo(info) => Some(Dst::V6(info.ipi6_addr)),
            _ => None,
        })
        .ok_or_else(|| io::Error::other("no packet info on the datagram"))?;
    let peer = msg
        .address
        .ok_or_else(|| io::Error::other("a datagram without a sender"))?;
    Ok((peer, dst))
}

/// Sends `data` to `peer` with source address `src`.
fn send_from(
    sock: &UdpSocket,
    data: &[u8],
    peer: &nix::sys::socket::SockaddrStorage,
    src: &Dst,
) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let iov = [io::IoSlice::new(data)];
    match src {
        Dst::V4(src) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: *src,
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            sendmsg(
                sock.as_raw_fd(),
                &iov,
                &[ControlMessage::Ipv4PacketInfo(&info)],
                MsgFlags::empty(),
                Some(peer),
            )?;
        }
        Dst::V6(src) => {
            // An IPv4-mapped source on a dual-stack socket answers an IPv4 client.
            let info = libc::in6_pktinfo {
                ipi6_addr: *src,
                ipi6_ifindex: 0,
            };
            sendmsg(
                sock.as_raw_fd(),
                &iov,
                &[ControlMessage::Ipv6PacketInfo(&info)],
                MsgFlags::empty(),
                Some(peer),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse_args(v.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_arguments() {
        let a = args(&["--name", "rs1", "--listen", "0.0.0.0:80", "--udp"]).unwrap();
        assert_eq!(a.name, "rs1");
        assert_eq!(a.listen, vec!["0.0.0.0:80".parse::<SocketAddr>().unwrap()]);
        assert!(a.udp);
        assert!(args(&["--name", "rs1"]).is_err());
        assert!(args(&["--listen", "0.0.0.0:80"]).is_err());
        assert!(args(&["--name", "rs1", "--listen", "nope"]).is_err());
        assert!(args(&["--name", "rs1", "--listen", "0.0.0.0:80", "--bogus"]).is_err());
        let a = args(&[
            "--name",
            "rs1",
            "--listen",
            "0.0.0.0:443",
            "--tls",
            "--sni-log",
            "/tmp/s",
        ])
        .unwrap();
        assert!(a.tls && !a.udp);
        assert_eq!(a.sni_log, Some(PathBuf::from("/tmp/s")));
        assert!(
            args(&[
                "--name",
                "rs1",
                "--listen",
                "0.0.0.0:443",
                "--sni-log",
                "/tmp/s"
            ])
            .is_err()
        );
        assert!(args(&["--name", "rs1", "--listen", "0.0.0.0:443", "--tls", "--udp"]).is_err());
    }

    #[test]
    fn trims_line_endings() {
        assert_eq!(trim_eol(b"HOLD\r\n"), b"HOLD");
        assert_eq!(trim_eol(b"HOLD\n"), b"HOLD");
        assert_eq!(trim_eol(b"HOLD"), b"HOLD");
        assert_eq!(trim_eol(b"\r\n"), b"");
    }
}
