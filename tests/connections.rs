//! The limits of every connection to a real `movierec serve` (src/server/listener.rs): idle and
//! slow-header timeouts, half-closed clients, clients that never read, and running out of
//! connections or open files.

use crate::common;

use common::server::Server;
use common::trained_model;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

const HEALTH: &[u8] = b"GET /api/health HTTP/1.1\r\nHost: test\r\n\r\n";

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.address()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection (or resets it), returning what arrived.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return all,
            Err(e) => panic!(
                "the connection was not closed: {e} after {} bytes",
                all.len()
            ),
        }
    }
}

/// One health check on a fresh connection: its status line and how long it took.
fn health_check(server: &Server) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = connect(server);
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut stream);
    let text = String::from_utf8_lossy(&answer);
    (
        text.lines().next().unwrap_or("").to_string(),
        started.elapsed(),
    )
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start_command(trained_model(), &["--idle-timeout", "1"], &[], None);
    let started = Instant::now();
    let mut idle = connect(&server);
    assert!(read_until_closed(&mut idle).is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    // A keep-alive connection that answered once is closed the same way once idle.
    let mut kept = connect(&server);
    kept.write_all(HEALTH).unwrap();
    let answer = read_until_closed(&mut kept);
    assert!(answer.starts_with(b"HTTP/1.1 200"));
}

#[test]
fn a_client_trickling_its_headers_is_cut_off() {
    let server = Server::start_command(trained_model(), &["--idle-timeout", "1"], &[], None);
    let mut slow = connect(&server);
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: test\r\n")
        .unwrap();
    let started = Instant::now();
    // One header line every 200 ms: never a complete head within the timeout.
    let mut cut = false;
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(200));
        if slow
            .write_all(format!("X-Line-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            cut = true;
            break;
        }
        let mut probe = [0u8; 1];
        slow.set_nonblocking(true).unwrap();
        let read = slow.read(&mut probe);
        slow.set_nonblocking(false).unwrap();
        match read {
            Ok(0) => {
                cut = true;
                break;
            }
            Ok(_) => panic!("the server answered a request whose head never ended"),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(
        cut,
        "a client sending a header line every 200 ms was never cut off"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(health_check(&server).0, "HTTP/1.1 200 OK");
}

#[test]
fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let server = Server::start(trained_model());
    for _ in 0..5 {
        let mut stream = connect(&server);
        stream.write_all(HEALTH).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let answer = read_until_closed(&mut stream);
        assert!(
            answer.starts_with(b"HTTP/1.1 200 OK"),
            "{:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    }
}

#[test]
fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let server = Server::start_command(trained_model(), &["--write-timeout", "1"], &[], None);
    let request = b"GET /api/movies/titles HTTP/1.1\r\nHost: test\r\n\r\n";
    // The size of one answer.
    let mut one = connect(&server);
    one.write_all(b"GET /api/movies/titles HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let single = read_until_closed(&mut one).len();
    assert!(single > 100_000, "one answer is {single} bytes");
    // Forty requests at once, and nothing read for three seconds: far more than the socket
    // buffers hold, so the server's writes stall.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address: std::net::SocketAddr = server.address().parse().unwrap();
    socket.connect(&address.into()).unwrap();
    let mut stalled: TcpStream = socket.into();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for _ in 0..40 {
        stalled.write_all(request).unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    let received = read_until_closed(&mut stalled).len();
    assert!(
        received < 40 * single,
        "all {received} bytes arrived: the stalled connection was kept"
    );
    assert_eq!(health_check(&server).0, "HTTP/1.1 200 OK");
}

#[test]
fn out_of_connections_or_files_new_clients_wait_and_are_answered() {
    // At most 8 connections: 20 idle ones take them all, a health check waits for the idle
    // timeout to free one and is answered.
    let server = Server::start_command(
        trained_model(),
        &["--max-connections", "8", "--idle-timeout", "1"],
        &[],
        None,
    );
    let idle: Vec<TcpStream> = (0..20).map(|_| connect(&server)).collect();
    let (status, took) = health_check(&server);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    drop(idle);

    // 100 open files at most (64 kept for the rest): the server takes no more connections than
    // its files allow, so it never fails to accept, and a health check is answered.
    let server = Server::start_command(
        trained_model(),
        &["--idle-timeout", "1"],
        &[],
        Some("ulimit -n 100"),
    );
    let idle: Vec<TcpStream> = (0..120).map(|_| connect(&server)).collect();
    let (status, took) = health_check(&server);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(took < Duration::from_secs(8), "answered after {took:?}");
    drop(idle);
    let log = server.log();
    assert!(
        !log.contains("Too many open files") && !log.contains("accept failed"),
        "{log}"
    );
}
