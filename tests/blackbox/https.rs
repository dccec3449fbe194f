//! The HTTPS port (`-tls-address`) with a test CA made by openssl: players over TLS (our own
//! rustls client, curl, ffmpeg), certificates renewed with SIGHUP, sources kept apart on
//! `-source-address`, private streams (`-listener-users`), CORS, and the admin's listener
//! list and kick.

use crate::common::tls_proxy::TestCa;
use crate::common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A response read over TLS: the head, then the body as it comes.
pub struct TlsGet {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    stream: StreamOwned<ClientConnection, TcpStream>,
}

impl TlsGet {
    /// Sends `raw` over TLS to `addr`, trusting only `ca`; `Err` when the handshake fails
    /// (an untrusted certificate) or no head comes.
    pub fn request(addr: SocketAddr, ca: &Path, raw: &str) -> Result<TlsGet, String> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut stream = StreamOwned::new(conn, tcp);
        stream
            .write_all(raw.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk) {
                Ok(0) => return Err("closed before a head".into()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(e.to_string()),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Ok(TlsGet {
            status,
            head,
            body: buf[end..].to_vec(),
            stream,
        })
    }

    pub fn get(addr: SocketAddr, ca: &Path, path: &str) -> Result<TlsGet, String> {
        Self::request(
            addr,
            ca,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tls-test\r\n\r\n"),
        )
    }

    /// Reads until `n` body bytes are held, EOF or `timeout`.
    pub fn read_body(&mut self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 16384];
        while self.body.len() < n && Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(k) => self.body.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => break,
            }
        }
        self.body.len()
    }

    /// Reads to the end of the response within `timeout`; true when it ended.
    pub fn read_to_end(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 16384];
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(k) => self.body.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                // A kick ends the socket without close_notify.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return true,
                Err(_) => return true,
            }
        }
        false
    }
}

/// The `-tls-address` ringcast logged ("HTTPS on ADDR").
pub fn https_addr(s: &Server) -> SocketAddr {
    let line = s
        .wait_log("HTTPS on ", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no HTTPS port: {}", s.log_text()));
    line.rsplit("HTTPS on ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The test MP3 stream in real time, with an HTTPS port using `cert`/`key`.
pub fn tls_server(cert: &Path, key: &Path, extra: &[&str]) -> (Server, SocketAddr) {
    let mp3 = fixture("tone-128k-44k1.mp3");
    let mut args = vec![
        "-tls-address",
        "127.0.0.1:0",
        "-tls-cert",
        cert.to_str().unwrap(),
        "-tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let s = mp3_server(&mp3, "16000", &args);
    let tls = https_addr(&s);
    (s, tls)
}

#[test]
fn players_get_the_stream_over_https_beside_plain_http() {
    let dir = scratch("https-play");
    let ca = TestCa::make(&dir, "play");
    let (s, tls) = tls_server(&ca.cert, &ca.key, &[]);

    // Our own rustls client: frames and ICY metadata, as on the plain port.
    let mut l = TlsGet::request(
        tls,
        &ca.ca,
        "GET / HTTP/1.1\r\nHost: localhost\r\nIcy-MetaData: 1\r\n\r\n",
    )
    .expect("TLS listener");
    assert_eq!(l.status, 200, "{}", l.head);
    assert_eq!(header(&l.head, "icy-metaint"), Some("16000"), "{}", l.head);
    assert!(l.read_body(20_000, Duration::from_secs(10)) >= 20_000);
    // A metadata block at 16000: its length byte, then (if any) the title.
    let len = l.body[16_000] as usize * 16;
    assert!(
        len == 0 || l.body[16_001..].starts_with(b"StreamTitle='"),
        "a metadata block at 16000"
    );

    // curl checks the certificate against the test CA.
    require_program("curl", "curl");
    let mut curl = Command::new("curl")
        .args(["-sS", "-N", "--cacert"])
        .arg(&ca.ca)
        .arg(format!("https://localhost:{}/", tls.port()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = vec![0u8; 8000];
    curl.stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("curl over https: {e}"));
    assert!(!mp3_frames(&got).is_empty(), "curl got MP3 frames");
    let _ = curl.kill();
    let _ = curl.wait();

    // ffmpeg decodes it.
    let (ok, err) = ffmpeg_decode(&format!("https://127.0.0.1:{}/", tls.port()), 2);
    assert!(ok, "ffmpeg over https: {err}");

    // The plain port serves as before, and status over TLS names https:// URLs.
    let mut plain = s.listen();
    assert!(plain.read_body(4000, Duration::from_secs(10)).len() >= 4000);
    let mut st = TlsGet::get(tls, &ca.ca, "/status-json.xsl").unwrap();
    st.read_to_end(Duration::from_secs(5));
    let body = String::from_utf8_lossy(&st.body);
    assert!(
        body.contains("\"listenurl\":\"https://localhost/\""),
        "{body}"
    );

    // A client that is not speaking TLS is logged and does not disturb anyone.
    let mut junk = TcpStream::connect(tls).unwrap();
    junk.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(s
        .wait_log("TLS handshake failed", Duration::from_secs(10))
        .is_some());
    assert!(l.read_body(40_000, Duration::from_secs(10)) >= 40_000);
}

#[test]
fn sighup_loads_a_renewed_certificate_for_new_connections_and_keeps_listeners() {
    let dir = scratch("https-renew");
    let old = TestCa::make(&dir, "old");
    let new = TestCa::make(&dir, "new");
    // The paths the server reads, as a renewal hook would replace them.
    let (cert, key) = (dir.join("live-cert.pem"), dir.join("live-key.pem"));
    std::fs::copy(&old.cert, &cert).unwrap();
    std::fs::copy(&old.key, &key).unwrap();
    let (s, tls) = tls_server(&cert, &key, &[]);

    let mut before = TlsGet::get(tls, &old.ca, "/").expect("old certificate");
    assert!(before.read_body(8000, Duration::from_secs(10)) >= 8000);
    assert!(
        TlsGet::get(tls, &new.ca, "/").is_err(),
        "not yet trusted by the new CA"
    );

    std::fs::copy(&new.cert, &cert).unwrap();
    std::fs::copy(&new.key, &key).unwrap();
    s.signal(libc::SIGHUP);
    assert!(s.wait_log("tls: loaded", Duration::from_secs(10)).is_some());
    let mut after = TlsGet::get(tls, &new.ca, "/").expect("the renewed certificate");
    assert!(after.read_body(8000, Duration::from_secs(10)) >= 8000);
    assert!(
        TlsGet::get(tls, &old.ca, "/").is_err(),
        "the old one is gone"
    );
    // The listener from before goes on.
    let had = before.body.len();
    assert!(before.read_body(had + 16_000, Duration::from_secs(10)) >= had + 16_000);

    // A broken renewal is logged and the certificate in use stays.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    s.signal(libc::SIGHUP);
    assert!(s
        .wait_log("keeping the certificate in use", Duration::from_secs(10))
        .is_some());
    let mut still = TlsGet::get(tls, &new.ca, "/").expect("still the renewed one");
    assert!(still.read_body(4000, Duration::from_secs(10)) >= 4000);
    let had = before.body.len();
    assert!(before.read_body(had + 8000, Duration::from_secs(10)) >= had + 8000);
}

#[test]
fn a_bad_certificate_or_key_stops_the_start_with_a_clear_error() {
    let dir = scratch("https-bad");
    let a = TestCa::make(&dir, "a");
    let b = TestCa::make(&dir, "b");
    let (cert, key, other_key) = (
        a.cert.to_str().unwrap(),
        a.key.to_str().unwrap(),
        b.key.to_str().unwrap(),
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["-tone", "-address", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        run_cli(&args)
    };
    let tls = ["-tls-address", "127.0.0.1:0"];
    let (code, _, err) = run(&[&tls[..], &["-tls-cert", cert, "-tls-key", other_key]].concat());
    assert_eq!(code, 1);
    assert!(err.contains("not a pair"), "{err}");
    let (code, _, err) = run(&[
        &tls[..],
        &["-tls-cert", "/nonexistent.pem", "-tls-key", key],
    ]
    .concat());
    assert_eq!(code, 1);
    assert!(err.contains("-tls-cert /nonexistent.pem"), "{err}");
    let (code, _, err) = run(&[&tls[..], &["-tls-cert", key, "-tls-key", key]].concat());
    assert_eq!(code, 1);
    assert!(err.contains("no PEM certificate"), "{err}");
    let (code, _, err) = run(&[&tls[..], &["-tls-cert", cert]].concat());
    assert_eq!(code, 1);
    assert!(err.contains("go together"), "{err}");
}

/// A PUT source request's head (Icecast's HTTP PUT, as ffmpeg sends it).
fn put_source(addr: SocketAddr, pass: &str) -> Listener {
    Listener::request(
        addr,
        &format!(
            "PUT /live HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\
             Expect: 100-continue\r\n\r\n",
            basic("source", pass)
        ),
    )
}

#[test]
fn sources_connect_to_the_source_address_only() {
    let src_port = free_port();
    let src = format!("127.0.0.1:{src_port}");
    let s = Server::start(&[
        "-source-password",
        "hackme",
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-source-address",
        &src,
    ]);
    assert!(s
        .wait_log(&format!("source clients on {src}"), Duration::from_secs(10))
        .is_some());
    // The listener port refuses sources, says where they go, and does not offer PUT.
    let refused = put_source(s.addr, "hackme");
    assert_eq!(refused.status, 405, "{}", refused.head);
    assert!(!header(&refused.head, "Allow").unwrap().contains("PUT"));
    let opts = Listener::request(s.addr, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        !header(&opts.head, "Allow").unwrap().contains("PUT"),
        "{}",
        opts.head
    );
    assert!(s
        .wait_log(
            "source clients connect to -source-address",
            Duration::from_secs(5)
        )
        .is_some());

    // ffmpeg pushes to the source port; a listener on the listener port hears it.
    let mp3 = fixture("tone-128k-44k1.mp3");
    let mut ff = ffmpeg_push(
        &mp3,
        &format!("icecast://source:hackme@127.0.0.1:{src_port}/live"),
        &[],
    );
    assert!(
        s.wait_log("source client connected", Duration::from_secs(15))
            .is_some(),
        "{}",
        s.log_text()
    );
    let mut l = s.listen();
    let body = l.read_body(8000, Duration::from_secs(15));
    assert!(mp3_frames(body).len() > 3, "frames from the pushed source");
    let _ = ff.kill();
    let _ = ff.wait();
}

/// A `-listener-users` line made by `ringcast -hash-password`.
pub fn user_line(name: &str, password: &str) -> String {
    let mut child = ringcast()
        .arg("-hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.starts_with("pbkdf2-sha256$"), "{hash}");
    format!("{name}:{}", hash.trim())
}

#[test]
fn private_streams_let_in_named_listeners_only() {
    let dir = scratch("https-private");
    let ca = TestCa::make(&dir, "private");
    let users = dir.join("users");
    std::fs::write(
        &users,
        format!("# studio\n{}\n", user_line("anna", "s3cret pw")),
    )
    .unwrap();
    let (s, tls) = tls_server(
        &ca.cert,
        &ca.key,
        &[
            "-listener-users",
            users.to_str().unwrap(),
            "-admin-password",
            "adm",
            // Credentials go only to origins named here (issue 20: not to any with `*`).
            "-cors-origin",
            "https://radio.example",
        ],
    );
    let get = |auth: Option<(&str, &str)>, path: &str| {
        let auth = auth.map_or(String::new(), |(u, p)| {
            format!("Authorization: {}\r\n", basic(u, p))
        });
        TlsGet::request(
            tls,
            &ca.ca,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n"),
        )
        .unwrap()
    };
    let none = get(None, "/");
    assert_eq!(none.status, 401, "{}", none.head);
    assert!(header(&none.head, "WWW-Authenticate")
        .unwrap()
        .starts_with("Basic realm="));
    assert_eq!(get(Some(("anna", "wrong")), "/").status, 401);
    assert_eq!(get(Some(("bob", "s3cret pw")), "/").status, 401);
    let mut ok = get(Some(("anna", "s3cret pw")), "/");
    assert_eq!(ok.status, 200, "{}", ok.head);
    assert!(ok.read_body(4000, Duration::from_secs(10)) >= 4000);
    // Web players that cannot send headers put the login in the query.
    let mut q = get(None, "/?user=anna&pass=s3cret%20pw");
    assert_eq!(q.status, 200, "{}", q.head);
    assert!(q.read_body(4000, Duration::from_secs(10)) >= 4000);
    assert!(s
        .wait_log("listening as \"anna\"", Duration::from_secs(5))
        .is_some());
    assert!(
        !s.log_text().contains("s3cret"),
        "a password reached the log"
    );
    // The page needs the login too (the browser then keeps it for the player); status
    // does not.
    assert_eq!(get(None, "/status.html").status, 401);
    assert_eq!(get(Some(("anna", "s3cret pw")), "/status.html").status, 200);
    assert_eq!(get(None, "/status-json.xsl").status, 200);
    // Across origins a browser sends the login only to a server that names the origin and
    // allows credentials: the origin -cors-origin lists.
    let pre = TlsGet::request(
        tls,
        &ca.ca,
        "OPTIONS / HTTP/1.1\r\nHost: localhost\r\nOrigin: https://radio.example\r\n\
         Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        header(&pre.head, "Access-Control-Allow-Origin"),
        Some("https://radio.example"),
        "{}",
        pre.head
    );
    assert_eq!(
        header(&pre.head, "Access-Control-Allow-Credentials"),
        Some("true")
    );

    // The admin's list names the user.
    let mut list = get(Some(("admin", "adm")), "/admin/listeners");
    list.read_to_end(Duration::from_secs(5));
    let v: serde_json::Value = serde_json::from_slice(&list.body).unwrap();
    let users_seen: Vec<&str> = v["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["user"].as_str())
        .collect();
    assert_eq!(users_seen, ["anna", "anna"], "{v}");

    // A new user file on SIGHUP: bob gets in, anna's connected sessions stay.
    std::fs::write(&users, user_line("bob", "pw2")).unwrap();
    s.signal(libc::SIGHUP);
    assert!(s
        .wait_log("reload: 1 listener login(s)", Duration::from_secs(10))
        .is_some());
    assert_eq!(get(Some(("bob", "pw2")), "/").status, 200);
    assert_eq!(get(Some(("anna", "s3cret pw")), "/").status, 401);
    let had = ok.body.len();
    assert!(ok.read_body(had + 8000, Duration::from_secs(10)) >= had + 8000);
    // A broken file keeps the logins in use.
    std::fs::write(&users, "bob\n").unwrap();
    s.signal(libc::SIGHUP);
    assert!(s
        .wait_log("keeping the 1 login(s) in use", Duration::from_secs(10))
        .is_some());
    assert_eq!(get(Some(("bob", "pw2")), "/").status, 200);
}

#[test]
fn browsers_get_cors_answers_and_the_icy_headers() {
    let s = mp3_server(&fixture("tone-128k-44k1.mp3"), "16000", &[]);
    let preflight = Listener::request(
        s.addr,
        "OPTIONS /status-json.xsl HTTP/1.1\r\nHost: x\r\nOrigin: https://player.example\r\n\
         Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: icy-metadata\r\n\r\n",
    );
    assert_eq!(preflight.status, 200, "{}", preflight.head);
    let h = |name| {
        header(&preflight.head, name)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(h("Access-Control-Allow-Origin"), "*");
    assert!(h("Access-Control-Allow-Headers").contains("Icy-MetaData"));
    assert!(h("Access-Control-Allow-Headers").contains("Range"));
    assert!(h("Access-Control-Allow-Headers").contains("Authorization"));
    assert_eq!(h("Access-Control-Allow-Methods"), "GET, HEAD, OPTIONS");
    let stream = Listener::request(
        s.addr,
        "GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://player.example\r\nIcy-MetaData: 1\r\n\r\n",
    );
    assert_eq!(
        header(&stream.head, "Access-Control-Allow-Origin"),
        Some("*")
    );
    assert!(header(&stream.head, "Access-Control-Expose-Headers")
        .unwrap()
        .contains("icy-metaint"));
    let status = Listener::get(s.addr, "/status-json.xsl", 1);
    assert_eq!(
        header(&status.head, "Access-Control-Allow-Origin"),
        Some("*")
    );
    // The page is there under Icecast's old name too.
    let page = Listener::get(s.addr, "/status.xsl", 1);
    assert_eq!(page.status, 200);
    assert_eq!(
        header(&page.head, "Content-Type"),
        Some("text/html; charset=utf-8")
    );

    // -cors-origin names the pages that may; others get no grant.
    let s = mp3_server(
        &fixture("tone-128k-44k1.mp3"),
        "16000",
        &[
            "-cors-origin",
            "https://radio.example, https://other.example",
        ],
    );
    let from = |origin: &str| {
        Listener::request(
            s.addr,
            &format!("GET / HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n\r\n"),
        )
    };
    let ok = from("https://radio.example");
    assert_eq!(
        header(&ok.head, "Access-Control-Allow-Origin"),
        Some("https://radio.example")
    );
    assert_eq!(header(&ok.head, "Vary"), Some("Origin"));
    let no = from("https://evil.example");
    assert_eq!(
        header(&no.head, "Access-Control-Allow-Origin"),
        None,
        "{}",
        no.head
    );
    assert_eq!(no.status, 200, "the stream itself is still served");
}

#[test]
fn the_admin_lists_listeners_and_kicks_one() {
    let dir = scratch("https-kick");
    let ca = TestCa::make(&dir, "kick");
    let (s, tls) = tls_server(&ca.cert, &ca.key, &["-admin-password", "adm"]);
    let mut plain = Listener::request(
        s.addr,
        "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: plain-player\r\n\r\n",
    );
    let mut secure = TlsGet::get(tls, &ca.ca, "/").unwrap();
    assert!(secure.read_body(4000, Duration::from_secs(10)) >= 4000);
    assert!(plain.read_body(4000, Duration::from_secs(10)).len() >= 4000);

    let admin = |path: &str| {
        let mut l = get_with_auth(s.addr, path, "admin", "adm");
        l.read_to_eof(Duration::from_secs(5));
        (l.status, String::from_utf8_lossy(&l.body).into_owned())
    };
    assert_eq!(Listener::get(s.addr, "/admin/listeners", 1).status, 401);
    let (status, body) = admin("/admin/listeners");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows = v["listeners"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    let row = |agent: &str| {
        rows.iter()
            .find(|r| r["user_agent"] == agent)
            .unwrap()
            .clone()
    };
    let (p, t) = (row("plain-player"), row("tls-test"));
    assert_eq!(
        (p["tls"].as_bool(), t["tls"].as_bool()),
        (Some(false), Some(true))
    );
    assert!(p["bytes_sent"].as_u64().unwrap() >= 4000, "{p}");
    assert!(p["address"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(p["skips"].as_u64(), Some(0));

    // Icecast's XML list names both.
    let (status, xml) = admin("/admin/listclients?mount=/");
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains("<Listeners>2</Listeners>"), "{xml}");
    assert!(xml.contains("<UserAgent>plain-player</UserAgent>"), "{xml}");

    // Kick the TLS listener: it ends at once, the other plays on.
    let (status, body) = admin(&format!("/admin/kick?id={}", t["id"]));
    assert_eq!(status, 200, "{body}");
    assert!(
        secure.read_to_end(Duration::from_secs(5)),
        "the kicked listener ended"
    );
    assert!(s
        .wait_log("kicked by the admin", Duration::from_secs(5))
        .is_some());
    let had = plain.body.len();
    assert!(plain.read_body(had + 8000, Duration::from_secs(10)).len() >= had + 8000);
    assert_eq!(admin(&format!("/admin/kick?id={}", t["id"])).0, 404);

    // Icecast's killclient, in Icecast's answer.
    let (_, xml) = admin(&format!("/admin/killclient?mount=/&id={}", p["id"]));
    assert!(xml.contains("<return>1</return>"), "{xml}");
    assert!(
        plain.read_to_eof(Duration::from_secs(5)),
        "killclient ended it"
    );
    let (_, xml) = admin("/admin/killclient?mount=/&id=999");
    assert!(xml.contains("<return>0</return>"), "{xml}");
    let (_, body) = admin("/admin/listeners");
    assert!(body.contains("\"listeners\":[]"), "{body}");
}
