//! Client-side helpers that run inside a namespace (normally the topology's client).
//!
//! Every socket is created on a thread that has `setns`'d into the namespace
//! ([`Netns::run_in`]); a socket stays in the namespace it was created in, so a
//! [`HoldConn`] can be used from the test's own thread afterwards.
//!
//! Results that a test may want to assert on (a reset, a refusal, a hang) are reported as an
//! [`Outcome`] rather than an error. `Err` is kept for failures of the test machinery itself.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use anyhow::{Result, bail};
use socket2::{Domain, Socket, Type};

use crate::netns::Netns;

/// A reasonable per-request timeout for tests on veths.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// What came back from one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered; the payload is the real server's name (trailing newline removed).
    Answered(String),
    /// Nothing came back before the timeout (the connection or datagram was dropped).
    TimedOut,
    /// The connection was reset (`ECONNRESET`: a TCP RST on an established connection).
    Reset,
    /// The connection attempt or datagram was refused (`ECONNREFUSED`: a RST answering the
    /// SYN, or an ICMP port/protocol unreachable).
    Refused,
    /// The peer closed the connection (EOF) without answering.
    Closed,
    /// An answer arrived but not in the expected format.
    Garbled(String),
    /// Any other I/O error (e.g. `HostUnreachable`, `BrokenPipe`).
    Error {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error's message.
        message: String,
    },
}

impl Outcome {
    /// Classifies an I/O error. `WouldBlock` (what a socket read timeout reports on Linux) and
    /// `TimedOut` become [`Outcome::TimedOut`].
    pub fn from_io(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Outcome::TimedOut,
            io::ErrorKind::ConnectionReset => Outcome::Reset,
            io::ErrorKind::ConnectionRefused => Outcome::Refused,
            kind => Outcome::Error {
                kind,
                message: e.to_string(),
            },
        }
    }

    /// The answering real server's name, if any.
    pub fn answer(&self) -> Option<&str> {
        match self {
            Outcome::Answered(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answered(name) => write!(f, "answered by {name}"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::Reset => f.write_str("connection reset"),
            Outcome::Refused => f.write_str("refused"),
            Outcome::Closed => f.write_str("closed without an answer"),
            Outcome::Garbled(s) => write!(f, "garbled answer {s:?}"),
            Outcome::Error { kind, message } => write!(f, "error ({kind:?}): {message}"),
        }
    }
}

/// Connects to `addr` (IPv4 or IPv6) from inside `ns` and returns the stream (read/write
/// timeouts set to `timeout`). A failed connection is reported as `Ok(Err(outcome))`.
pub fn tcp_connect(
    ns: &Netns,
    addr: impl Into<SocketAddr>,
    timeout: Duration,
) -> Result<std::result::Result<TcpStream, Outcome>> {
    let addr = addr.into();
    ns.run_in(|| connect(addr, timeout))
}

fn connect(addr: SocketAddr, timeout: Duration) -> std::result::Result<TcpStream, Outcome> {
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| Outcome::from_io(&e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| Outcome::from_io(&e))?;
    Ok(stream)
}

/// Connects to `addr` from the fixed local address `local` (port 0: any port). The socket
/// has `SO_REUSEADDR`, so a client port can be used again right after its previous
/// connection closed (as long as this host keeps no `TIME_WAIT` for the same four-tuple).
/// A connection that is not answered within `timeout` is [`Outcome::TimedOut`].
fn connect_from(
    local: SocketAddr,
    addr: SocketAddr,
    timeout: Duration,
) -> std::result::Result<TcpStream, Outcome> {
    let os_err = |e: io::Error| Outcome::from_io(&e);
    // socket2 opens it with SOCK_CLOEXEC, as std does.
    let socket = Socket::new(Domain::for_address(local), Type::STREAM, None).map_err(os_err)?;
    socket.set_reuse_address(true).map_err(os_err)?;
    socket.bind(&local.into()).map_err(os_err)?;
    // connect(2) honours SO_SNDTIMEO and reports EINPROGRESS when it runs out.
    socket
        .set_write_timeout(Some(timeout))
        .and_then(|()| socket.set_read_timeout(Some(timeout)))
        .map_err(os_err)?;
    if let Err(e) = socket.connect(&addr.into()) {
        return Err(if e.raw_os_error() == Some(libc::EINPROGRESS) {
            Outcome::TimedOut
        } else {
            Outcome::from_io(&e)
        });
    }
    Ok(TcpStream::from(socket))
}

/// One HTTP/1.0 GET on a new connection; the body is the real server's name.
fn http_once(addr: SocketAddr, timeout: Duration) -> Outcome {
    match connect(addr, timeout) {
        Ok(s) => http_over(s, addr),
        Err(outcome) => outcome,
    }
}

/// One HTTP/1.0 GET on the connected `stream`.
fn http_over(mut stream: TcpStream, addr: SocketAddr) -> Outcome {
    let request = format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return Outcome::from_io(&e);
    }
    let mut response = Vec::new();
    if let Err(e) = stream.read_to_end(&mut response) {
        return Outcome::from_io(&e);
    }
    parse_http_response(&response)
}

/// Extracts the body of `HTTP/1.x 200` responses; anything else is [`Outcome::Garbled`]
/// (or [`Outcome::Closed`] when empty).
fn parse_http_response(response: &[u8]) -> Outcome {
    if response.is_empty() {
        return Outcome::Closed;
    }
    let text = String::from_utf8_lossy(response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Outcome::Garbled(text.into_owned());
    };
    let status_ok = head
        .lines()
        .next()
        .is_some_and(|l| l.starts_with("HTTP/1.") && l.split_whitespace().nth(1) == Some("200"));
    let length_ok = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .is_none_or(|(_, v)| v.trim().parse::<usize>().ok() == Some(body.len()));
    if !status_ok || !length_ok || !body.ends_with('\n') {
        return Outcome::Garbled(text.into_owned());
    }
    Outcome::Answered(body.trim_end_matches('\n').to_owned())
}

/// GET `http://addr/` from inside `ns` and report what happened.
pub fn http_try(ns: &Netns, addr: impl Into<SocketAddr>, timeout: Duration) -> Result<Outcome> {
    let addr = addr.into();
    ns.run_in(|| http_once(addr, timeout))
}

/// GET `http://addr/` from inside `ns` on a connection from the local address `local` (e.g. a
/// second client address, or a fixed client port to reuse) and report what happened.
pub fn http_try_from(
    ns: &Netns,
    local: impl Into<SocketAddr>,
    addr: impl Into<SocketAddr>,
    timeout: Duration,
) -> Result<Outcome> {
    let (local, addr) = (local.into(), addr.into());
    ns.run_in(|| match connect_from(local, addr, timeout) {
        Ok(s) => http_over(s, addr),
        Err(outcome) => outcome,
    })
}

/// GET `http://addr/` from inside `ns`; returns the body, i.e. the real server's name.
/// Anything but an answer is an error.
pub fn http_get(ns: &Netns, addr: impl Into<SocketAddr>, timeout: Duration) -> Result<String> {
    let addr = addr.into();
    match http_try(ns, addr, timeout)? {
        Outcome::Answered(name) => Ok(name),
        other => bail!("GET http://{addr}/ from {}: {other}", ns.name()),
    }
}

/// `n` GETs, each on a new connection (new source port), from inside `ns`; counts answers
/// per real server name. Any request that is not answered is an error.
pub fn http_get_many(
    ns: &Netns,
    addr: impl Into<SocketAddr>,
    n: usize,
    timeout: Duration,
) -> Result<HashMap<String, usize>> {
    let addr = addr.into();
    let outcomes = ns.run_in(|| {
        let mut counts = HashMap::new();
        for i in 0..n {
            match http_once(addr, timeout) {
                Outcome::Answered(name) => *counts.entry(name).or_insert(0) += 1,
                other => return Err((i, other)),
            }
        }
        Ok(counts)
    })?;
    match outcomes {
        Ok(counts) => Ok(counts),
        Err((i, other)) => bail!(
            "GET http://{addr}/ #{} of {n} from {}: {other}",
            i + 1,
            ns.name()
        ),
    }
}

/// A TCP connection kept open in hold mode (`HOLD` request line): every line sent is answered
/// with the real server's name, so a test can check that an established connection still
/// reaches the same real server, hangs, or is reset.
#[derive(Debug)]
pub struct HoldConn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    backend: String,
}

impl HoldConn {
    /// Connects from inside `ns`, sends `HOLD` and waits for the first answer.
    /// Fails unless the connection is answered.
    pub fn open(ns: &Netns, addr: impl Into<SocketAddr>, timeout: Duration) -> Result<Self> {
        let addr = addr.into();
        match Self::try_open(ns, addr, timeout)? {
            Ok(conn) => Ok(conn),
            Err(outcome) => bail!("HOLD connection to {addr} from {}: {outcome}", ns.name()),
        }
    }

    /// Like [`HoldConn::open`], reporting a failed attempt as `Ok(Err(outcome))`.
    pub fn try_open(
        ns: &Netns,
        addr: impl Into<SocketAddr>,
        timeout: Duration,
    ) -> Result<std::result::Result<Self, Outcome>> {
        let addr = addr.into();
        ns.run_in(|| Self::connect_in_current_ns(addr, timeout))
    }

    /// Like [`HoldConn::try_open`], from the local address `local` (see [`http_try_from`]).
    pub fn try_open_from(
        ns: &Netns,
        local: impl Into<SocketAddr>,
        addr: impl Into<SocketAddr>,
        timeout: Duration,
    ) -> Result<std::result::Result<Self, Outcome>> {
        let (local, addr) = (local.into(), addr.into());
        ns.run_in(|| Self::hold_over(connect_from(local, addr, timeout)?, timeout))
    }

    fn connect_in_current_ns(
        addr: SocketAddr,
        timeout: Duration,
    ) -> std::result::Result<Self, Outcome> {
        Self::hold_over(connect(addr, timeout)?, timeout)
    }

    fn hold_over(writer: TcpStream, timeout: Duration) -> std::result::Result<Self, Outcome> {
        let reader = BufReader::new(writer.try_clone().map_err(|e| Outcome::from_io(&e))?);
        let mut conn = HoldConn {
            writer,
            reader,
            backend: String::new(),
        };
        match conn.exchange(b"HOLD\n", timeout) {
            Outcome::Answered(name) => {
                conn.backend = name;
                Ok(conn)
            }
            other => Err(other),
        }
    }

    /// The real server that answered the `HOLD`.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The connection's local (client) address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.writer.local_addr()
    }

    /// The next sequence number the client expects from the server: its receive queue's
    /// `TCP_QUEUE_SEQ`, read in repair mode (`TCP_REPAIR`, needs `CAP_NET_ADMIN`). Once the
    /// client has acknowledged everything, it is the server's `snd_una` and `snd_nxt`: the
    /// sequence number an ICMP error about the server's next segment quotes.
    pub fn server_next_seq(&self) -> io::Result<u32> {
        use std::os::fd::AsRawFd as _;
        /// `TCP_RECV_QUEUE` of `TCP_REPAIR_QUEUE` (linux/tcp.h).
        const TCP_RECV_QUEUE: libc::c_int = 1;
        let fd = self.writer.as_raw_fd();
        let set = |opt: libc::c_int, val: libc::c_int| -> io::Result<()> {
            // SAFETY: an int option of a socket this connection owns.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_TCP,
                    opt,
                    (&raw const val).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        set(libc::TCP_REPAIR, 1)?;
        let seq = set(libc::TCP_REPAIR_QUEUE, TCP_RECV_QUEUE).and_then(|()| {
            let mut seq: u32 = 0;
            let mut len = size_of::<u32>() as libc::socklen_t;
            // SAFETY: a u32 out-parameter of the right length.
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_TCP,
                    libc::TCP_QUEUE_SEQ,
                    (&raw mut seq).cast(),
                    &raw mut len,
                )
            };
            if rc == 0 {
                Ok(seq)
            } else {
                Err(io::Error::last_os_error())
            }
        });
        set(libc::TCP_REPAIR, 0)?;
        seq
    }

    /// Sends a line and waits up to `timeout` for the answer.
    ///
    /// [`Outcome::Answered`] (the real server's name), [`Outcome::TimedOut`] (hang),
    /// [`Outcome::Reset`] (`ECONNRESET`, from the read or from the write that follows a
    /// received RST) or [`Outcome::Closed`] (EOF). After a timeout a late answer may still
    /// arrive and be returned by the next call.
    pub fn ask(&mut self, timeout: Duration) -> Outcome {
        self.exchange(b"ping\n", timeout)
    }

    fn exchange(&mut self, line: &[u8], timeout: Duration) -> Outcome {
        if let Err(e) = self
            .writer
            .set_write_timeout(Some(timeout))
            .and_then(|()| self.reader.get_ref().set_read_timeout(Some(timeout)))
        {
            return Outcome::from_io(&e);
        }
        if let Err(e) = self.writer.write_all(line) {
            return Outcome::from_io(&e);
        }
        let mut answer = String::new();
        match self.reader.read_line(&mut answer) {
            Ok(0) => Outcome::Closed,
            Ok(_) if answer.ends_with('\n') => {
                Outcome::Answered(answer.trim_end_matches('\n').to_owned())
            }
            // A partial line then EOF.
            Ok(_) => Outcome::Garbled(answer),
            Err(e) => Outcome::from_io(&e),
        }
    }

    /// Closes the connection gracefully (FIN).
    pub fn close(self) -> io::Result<()> {
        self.writer.shutdown(Shutdown::Both)
    }
}

/// Sends one datagram from a new socket (new source port) inside `ns` to `addr` and waits up
/// to `timeout` for an answer. An ICMP port unreachable shows as [`Outcome::Refused`] (the
/// socket is connected, so ICMP errors are reported).
pub fn udp_ask(
    ns: &Netns,
    addr: impl Into<SocketAddr>,
    payload: &[u8],
    timeout: Duration,
) -> Result<Outcome> {
    let addr = addr.into();
    ns.run_in(|| udp_once(addr, payload, timeout))
}

/// `n` × [`udp_ask`], each from a new socket; counts answers per real server name. Any
/// datagram that is not answered is an error.
pub fn udp_ask_many(
    ns: &Netns,
    addr: impl Into<SocketAddr>,
    n: usize,
    timeout: Duration,
) -> Result<HashMap<String, usize>> {
    let addr = addr.into();
    let outcomes = ns.run_in(|| {
        let mut counts = HashMap::new();
        for i in 0..n {
            match udp_once(addr, b"ask\n", timeout) {
                Outcome::Answered(name) => *counts.entry(name).or_insert(0) += 1,
                other => return Err((i, other)),
            }
        }
        Ok(counts)
    })?;
    match outcomes {
        Ok(counts) => Ok(counts),
        Err((i, other)) => bail!("UDP {addr} #{} of {n} from {}: {other}", i + 1, ns.name()),
    }
}

/// The wildcard address of `addr`'s family, port 0: what a client socket binds.
fn any_of(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

fn udp_once(addr: SocketAddr, payload: &[u8], timeout: Duration) -> Outcome {
    let sock = match UdpSocket::bind(any_of(addr)).and_then(|s| s.connect(addr).map(|()| s)) {
        Ok(s) => s,
        Err(e) => return Outcome::from_io(&e),
    };
    udp_exchange(&sock, payload, timeout)
}

/// Sends `payload` on the connected `sock` and waits up to `timeout` for one answer.
fn udp_exchange(sock: &UdpSocket, payload: &[u8], timeout: Duration) -> Outcome {
    let attempt = || -> io::Result<Outcome> {
        sock.set_read_timeout(Some(timeout))?;
        sock.send(payload)?;
        let mut buf = [0u8; 2048];
        let n = sock.recv(&mut buf)?;
        let text = String::from_utf8_lossy(&buf[..n]);
        Ok(match text.strip_suffix('\n') {
            Some(name) if !name.contains('\n') => Outcome::Answered(name.to_owned()),
            _ => Outcome::Garbled(text.into_owned()),
        })
    };
    attempt().unwrap_or_else(|e| Outcome::from_io(&e))
}

/// A UDP "flow": one socket, so one client port, connected to `addr`, created inside a
/// namespace and then used from any thread. Every datagram it sends belongs to the same
/// connection entry on the load balancer (same client address and port).
#[derive(Debug)]
pub struct UdpFlow {
    sock: UdpSocket,
}

impl UdpFlow {
    /// Binds an ephemeral port inside `ns` and connects to `addr`.
    pub fn open(ns: &Netns, addr: impl Into<SocketAddr>) -> Result<Self> {
        let addr = addr.into();
        let sock = ns.run_in(|| -> io::Result<UdpSocket> {
            let sock = UdpSocket::bind(any_of(addr))?;
            sock.connect(addr)?;
            Ok(sock)
        })??;
        Ok(UdpFlow { sock })
    }

    /// The flow's local (client) address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sends one datagram and waits up to `timeout` for the answer (the real server's name);
    /// an ICMP port unreachable shows as [`Outcome::Refused`].
    pub fn ask(&self, timeout: Duration) -> Outcome {
        udp_exchange(&self.sock, b"ask\n", timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errors() {
        let e = |k| io::Error::from(k);
        assert_eq!(
            Outcome::from_io(&e(io::ErrorKind::ConnectionReset)),
            Outcome::Reset
        );
        assert_eq!(
            Outcome::from_io(&e(io::ErrorKind::ConnectionRefused)),
            Outcome::Refused
        );
        assert_eq!(
            Outcome::from_io(&e(io::ErrorKind::WouldBlock)),
            Outcome::TimedOut
        );
        assert_eq!(
            Outcome::from_io(&e(io::ErrorKind::TimedOut)),
            Outcome::TimedOut
        );
        assert!(matches!(
            Outcome::from_io(&e(io::ErrorKind::BrokenPipe)),
            Outcome::Error {
                kind: io::ErrorKind::BrokenPipe,
                ..
            }
        ));
        assert_eq!(
            Outcome::from_io(&io::Error::from_raw_os_error(libc::ECONNRESET)),
            Outcome::Reset
        );
    }

    #[test]
    fn parses_http() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nrs1\n";
        assert_eq!(parse_http_response(ok), Outcome::Answered("rs1".into()));
        assert_eq!(parse_http_response(b""), Outcome::Closed);
        assert!(matches!(
            parse_http_response(b"HTTP/1.0 500 Oops\r\n\r\nrs1\n"),
            Outcome::Garbled(_)
        ));
        assert!(matches!(
            parse_http_response(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nrs1\n"),
            Outcome::Garbled(_)
        ));
        assert!(matches!(
            parse_http_response(b"HTTP/1.0 200 OK\r\n"),
            Outcome::Garbled(_)
        ));
    }

    #[test]
    fn outcome_display() {
        assert_eq!(
            Outcome::Answered("rs2".into()).to_string(),
            "answered by rs2"
        );
        assert_eq!(Outcome::Reset.to_string(), "connection reset");
        assert_eq!(Outcome::Answered("rs2".into()).answer(), Some("rs2"));
        assert_eq!(Outcome::TimedOut.answer(), None);
    }
}
