//! Many listeners at once, at different speeds.

use crate::common::*;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn five_hundred_listeners_at_different_speeds_without_errors() {
    let path = fixture("tone-128k-44k1.mp3");
    let s = mp3_server(
        &path,
        "16000",
        // All from one address: its listener share is lifted (default: half the slots).
        &[
            "-max-clients",
            "600",
            "-max-pending-per-ip",
            "1000",
            "-max-listeners-per-ip",
            "0",
        ],
    );
    let addr = s.addr;
    let run_for = Duration::from_secs(3);
    let threads: Vec<_> = (0..500)
        .map(|i| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || -> Result<usize, String> {
                    let mut conn = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
                    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    std::io::Write::write_all(&mut conn, b"GET / HTTP/1.0\r\n\r\n").unwrap();
                    let (status, _, body) = read_head(&mut conn);
                    if status != 200 {
                        return Err(format!("status {status}"));
                    }
                    // Speeds from "as fast as possible" to a quarter of the stream rate.
                    let (chunk, pause) = match i % 4 {
                        0 => (65536, 0),
                        1 => (2048, 50),
                        2 => (1024, 100),
                        _ => (400, 100),
                    };
                    let mut got = body.len();
                    let mut buf = vec![0u8; chunk];
                    let start = Instant::now();
                    while start.elapsed() < run_for {
                        match conn.read(&mut buf) {
                            Ok(0) => return Err("closed by server".into()),
                            Ok(n) => got += n,
                            Err(e) => return Err(format!("read: {e}")),
                        }
                        std::thread::sleep(Duration::from_millis(pause));
                    }
                    Ok(got)
                })
                .unwrap()
        })
        .collect();
    let results: Vec<Result<usize, String>> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    assert!(results.iter().all(|r| *r.as_ref().unwrap() > 1000));
    // And the server still serves afterwards.
    assert_eq!(s.listen().status, 200);
}
