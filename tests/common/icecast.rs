//! Debian's icecast2 as a peer: started on a free port with files it can read.

use super::*;

pub const ICECAST_SOURCE_PASSWORD: &str = "hackme";
pub const ICECAST_ADMIN_PASSWORD: &str = "adminpw";

/// Debian's icecast2 on 127.0.0.1:`port`, with its own config and logs under target/.
pub struct Icecast {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Icecast {
    /// icecast2 on `port` (a restart on the port it had before).
    pub fn start(name: &str, port: u16) -> Icecast {
        Icecast::launch(name, port, 1100).unwrap_or_else(|why| panic!("{why}"))
    }

    /// icecast2 on a free port of its own.
    pub fn start_free(name: &str) -> Icecast {
        Icecast::start_free_for(name, 1100)
    }

    /// The same, allowing `clients` connections (the bench's 5000 listeners need more). A
    /// port found free can be taken before icecast2 binds it, by another test's peer
    /// restarting on it (the pull test restarts its Icecast on the same port): icecast2 then
    /// exits, and another port is tried.
    pub fn start_free_for(name: &str, clients: usize) -> Icecast {
        let mut last = String::new();
        for _ in 0..5 {
            match Icecast::launch(name, free_port(), clients) {
                Ok(ice) => return ice,
                Err(why) => {
                    eprintln!("icecast2 did not start, trying another port: {why}");
                    last = why;
                }
            }
        }
        panic!("icecast2 did not start on five ports: {last}")
    }

    fn launch(name: &str, port: u16, clients: usize) -> Result<Icecast, String> {
        require_program("icecast2", "icecast2");
        // icecast2 refuses to run as root: it switches to nobody when we are root, and
        // nobody must reach its files. A clone in a private folder (mktemp -d, a home
        // directory: 0700) keeps nobody out of target/, so as root its files go under the
        // system's temporary folder instead, named for this test process.
        let root = unsafe { libc::getuid() } == 0;
        let dir = if root {
            let d = std::env::temp_dir()
                .join(format!("ringcast-tests-{}", std::process::id()))
                .join(name);
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            for p in [d.parent().unwrap(), d.as_path()] {
                std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .unwrap();
            }
            d
        } else {
            scratch(name)
        };
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let owner = if root {
            "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
        } else {
            ""
        };
        let conf = format!(
            r#"<icecast>
  <limits><clients>{clients}</clients><sources>4</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout><source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>65535</burst-size></limits>
  <authentication><source-password>{src}</source-password><admin-user>admin</admin-user><admin-password>{adm}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{dir}</logdir><webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot><pidfile>{dir}/icecast.pid</pidfile></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>"#,
            src = ICECAST_SOURCE_PASSWORD,
            adm = ICECAST_ADMIN_PASSWORD,
            dir = dir.display(),
        );
        let conf_path = dir.join("icecast.xml");
        std::fs::write(&conf_path, conf).unwrap();
        // Debian's icecast2 2.4.4 now and then dies of SIGSEGV while starting, before it
        // answers anything (CI saw it once, with nothing of ours connected yet). That is the
        // peer's fault, not a finding about ringcast: start it again, at most three times, and
        // say so on stderr. A crash after it answered still fails the test.
        for attempt in 1..=3 {
            let mut cmd = Command::new("icecast2");
            cmd.arg("-c").arg(&conf_path);
            let child = spawn_quiet(cmd);
            let mut ice = Icecast {
                child,
                port,
                dir: dir.clone(),
            };
            // This icecast2 must answer, not whatever else holds the port (another test's
            // Icecast, a loopback socket connected to itself): the probe names its PID and
            // must show up in this one's log.
            let probe = format!("/ringcast-probe-{}.txt", ice.child.id());
            let settled = eventually(Duration::from_secs(10), || {
                (ice.answers(&probe) && ice.logged(&probe)) || ice.exited()
            });
            if settled && !ice.exited() {
                return Ok(ice);
            }
            let crashed = matches!(ice.child.try_wait(), Ok(Some(st)) if st.signal().is_some());
            let why = ice.describe();
            if !crashed || attempt == 3 {
                return Err(format!("icecast2 did not start: {why}"));
            }
            eprintln!(
                "icecast2 crashed while starting (attempt {attempt}), starting it again: {why}"
            );
        }
        unreachable!("the loop returns")
    }

    /// Whether an icecast2 answers `probe` on the port. The file is not there: the 404 comes
    /// from Icecast's own file server (its Server header says so) and, unlike the status
    /// page, involves no XSLT while the server is still starting.
    fn answers(&self, probe: &str) -> bool {
        let Ok(mut c) = TcpStream::connect(self.addr()) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!("GET {probe} HTTP/1.0\r\nHost: test\r\n\r\n");
        let mut answer = Vec::new();
        c.write_all(req.as_bytes()).is_ok()
            && c.read_to_end(&mut answer).is_ok()
            && String::from_utf8_lossy(&answer).contains("Icecast")
    }

    /// Whether this icecast2's error log mentions `text` (its file server logs every path).
    fn logged(&self, text: &str) -> bool {
        std::fs::read_to_string(self.dir.join("error.log")).is_ok_and(|l| l.contains(text))
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether the process still runs, and its error log: for failure messages.
    pub fn describe(&mut self) -> String {
        let state = match self.child.try_wait() {
            Ok(None) => "running".to_string(),
            Ok(Some(status)) => format!("exited ({status})"),
            Err(e) => format!("unknown ({e})"),
        };
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        format!("icecast2 on port {} {state}; error.log:\n{log}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills icecast2 and waits until its port is free again.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eventually(Duration::from_secs(10), || {
            TcpStream::connect(self.addr()).is_err()
        });
    }
}

impl Drop for Icecast {
    fn drop(&mut self) {
        self.stop();
        // Files put under the system's temporary folder (as root) go with it.
        if self.dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(&self.dir);
            let _ = std::fs::remove_dir(self.dir.parent().unwrap());
        }
    }
}
