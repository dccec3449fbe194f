//! Debian's nginx as a TLS-terminating reverse proxy on 127.0.0.1, the way a far server puts
//! ringcast behind `https://`, with a test CA and server certificate made by the openssl CLI.
//! Streams are passed unbuffered both ways (`proxy_buffering off`,
//! `proxy_request_buffering off`): the configuration the README gives to users.

use crate::common::*;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A test certificate authority and a server certificate it signed for 127.0.0.1 and
/// localhost.
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// Makes one under `dir` (`name` tells two CAs apart in certificates).
    pub fn make(dir: &Path, name: &str) -> TestCa {
        require_program("openssl", "openssl");
        let p = |f: &str| dir.join(format!("{name}-{f}"));
        let ext = p("ext.cnf");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let s = |x: &PathBuf| x.to_str().unwrap().to_string();
        openssl(
            &[
                &["req", "-x509", "-nodes", "-days", "2"][..],
                &ec,
                &["-subj", &format!("/CN=ringcast test CA {name}")],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
                &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                &["-keyout", &s(&p("ca.key")), "-out", &s(&p("ca.pem"))],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req", "-nodes", "-subj", "/CN=localhost"][..],
                &ec,
                &[
                    "-keyout",
                    &s(&p("server.key")),
                    "-out",
                    &s(&p("server.csr")),
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &s(&p("server.csr")),
            "-CA",
            &s(&p("ca.pem")),
            "-CAkey",
            &s(&p("ca.key")),
            "-CAcreateserial",
            "-extfile",
            &s(&ext),
            "-out",
            &s(&p("server.pem")),
        ]);
        TestCa {
            ca: p("ca.pem"),
            cert: p("server.pem"),
            key: p("server.key"),
        }
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// nginx terminating TLS on `addr` and proxying everything to `backend` over plain HTTP.
/// Its access log has the TLS version and whether the session was resumed.
pub struct TlsProxy {
    child: Child,
    pub addr: SocketAddr,
    pub ca: TestCa,
    dir: PathBuf,
}

impl TlsProxy {
    /// `protocols`: nginx's `ssl_protocols`, e.g. `TLSv1.2 TLSv1.3`.
    pub fn start(name: &str, backend: SocketAddr, protocols: &str) -> TlsProxy {
        require_program("nginx", "nginx-light");
        let dir = scratch(name);
        let ca = TestCa::make(&dir, "proxy");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let d = dir.display();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
  log_format tls "$request_method $uri $ssl_protocol reused=$ssl_session_reused";
  access_log {d}/access.log tls;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen {addr} ssl;
    ssl_protocols {protocols};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://{backend};
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }}
  }}
}}
"#,
            cert = ca.cert.display(),
            key = ca.key.display(),
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-e").arg(dir.join("error.log"));
        cmd.arg("-p").arg(&dir).arg("-c").arg(&conf_path);
        let child = spawn_quiet(cmd);
        let proxy = TlsProxy {
            child,
            addr,
            ca,
            dir,
        };
        assert!(
            eventually(Duration::from_secs(10), || TcpStream::connect(addr).is_ok()),
            "nginx did not start: {}",
            proxy.error_log()
        );
        proxy
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Requests nginx passed on (its access log).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
