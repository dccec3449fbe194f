//! Every flag, declared once: its field in [`Args`], its name, how its value is parsed, the
//! group `-help` lists it under, where it may be given (command line, mount file or both)
//! and its help text. The `flags!` macro turns the table into the `Args` struct, the
//! parser's lookup and the help listing, so none of them can miss a flag.

use super::values::{parse_bool, parse_duration, parse_int};
use crate::error::Error;
use std::time::Duration;

/// How a flag's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Go bool: `-x`, `-x=true`, `-x=false`.
    Bool,
    /// Go integer (`64`, `0x40`).
    Int,
    /// Go duration (`500ms`, `1m30s`).
    Dur,
    /// Any text.
    Text,
    /// Text, repeatable: every value is kept.
    List,
}

/// Where a flag may be given once mounts are in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole server: the command line (or its `-flags-file`) only.
    Server,
    /// One stream: the command line without `-mount`, or a mount's file.
    Stream,
    /// Both: the server's value, and a mount's own.
    Both,
}

/// The `-help` groups, in the order listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Input,
    Framing,
    Listeners,
    Mounts,
    Icecast,
    Link,
    Tls,
    Server,
    Logging,
}

impl Group {
    pub const ALL: [Group; 9] = [
        Group::Input,
        Group::Framing,
        Group::Listeners,
        Group::Mounts,
        Group::Icecast,
        Group::Link,
        Group::Tls,
        Group::Server,
        Group::Logging,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Group::Input => "Input (one per stream)",
            Group::Framing => "Framing and the ring",
            Group::Listeners => "Listeners",
            Group::Mounts => "Mounts (several streams on one port)",
            Group::Icecast => "Icecast: stream information, titles, output",
            Group::Link => "Link (between two ringcasts)",
            Group::Tls => "TLS",
            Group::Server => "Server",
            Group::Logging => "Logging",
        }
    }
}

/// One row of the table.
#[derive(Debug)]
pub struct Flag {
    pub name: &'static str,
    pub kind: Kind,
    pub group: Group,
    pub scope: Scope,
    /// The value's placeholder in `-help` (empty for bools).
    pub value: &'static str,
    pub help: &'static str,
}

macro_rules! field_type {
    (Bool) => { Option<bool> };
    (Int) => { Option<i64> };
    (Dur) => { Option<Duration> };
    (Text) => { Option<String> };
    (List) => { Vec<String> };
}

macro_rules! set_field {
    (Bool, $f:expr, $v:expr) => {
        $f = Some(parse_bool($v)?)
    };
    (Int, $f:expr, $v:expr) => {
        $f = Some(parse_int($v)?)
    };
    (Dur, $f:expr, $v:expr) => {
        $f = Some(parse_duration($v)?)
    };
    (Text, $f:expr, $v:expr) => {
        $f = Some($v.to_string())
    };
    (List, $f:expr, $v:expr) => {
        $f.push($v.to_string())
    };
}

macro_rules! is_given {
    (List, $f:expr) => {
        !$f.is_empty()
    };
    ($k:ident, $f:expr) => {
        $f.is_some()
    };
}

macro_rules! flags {
    ($( $field:ident $name:literal $kind:ident $group:ident $scope:ident $value:literal $help:literal; )*) => {
        /// The flags as given: `None` (or empty) for a flag not given. `config` gives the
        /// defaults and checks the values.
        #[derive(Debug, Default, Clone, PartialEq)]
        pub struct Args {
            $( pub $field: field_type!($kind), )*
        }

        pub const FLAGS: &[Flag] = &[
            $( Flag {
                name: $name,
                kind: Kind::$kind,
                group: Group::$group,
                scope: Scope::$scope,
                value: $value,
                help: $help,
            }, )*
        ];

        impl Args {
            /// Stores one flag's value (a later one replaces an earlier one, as in Go, except
            /// for lists); `Err` says why the value is bad.
            pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
                match name {
                    $( $name => set_field!($kind, self.$field, value), )*
                    _ => return Err(format!("flag provided but not defined: -{name}").into()),
                }
                Ok(())
            }

            /// The names of the flags given.
            pub fn given(&self) -> Vec<&'static str> {
                let mut out = Vec::new();
                $( if is_given!($kind, self.$field) { out.push($name); } )*
                out
            }
        }
    };
}

/// The flag named `name`.
pub fn find(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

/// The flag `word` is written as (`-name`, `--name`, `-name=value`), if it is one of ours:
/// for the warning about a flag typed after `-exec`'s command.
pub fn written_as_flag(word: &str) -> Option<&'static str> {
    let name = word.strip_prefix("--").or_else(|| word.strip_prefix('-'))?;
    let name = name.split('=').next().unwrap_or(name);
    find(name).map(|f| f.name)
}

flags! {
    // field             name                  kind  group     scope   value       help
    flags_file           "flags-file"          Text  Server    Server  "FILE"      "read more flags from FILE, written as on a command line (quotes, # comments)";
    path                 "path"                Text  Input     Stream  "FILE"      "read the stream from this file, FIFO or device (default /dev/stdin)";
    exec                 "exec"                Bool  Input     Stream  ""          "run the command given after the flags and read its stdout (no shell; PATH lookup)";
    tone                 "tone"                Bool  Input     Stream  ""          "serve the built-in test tone (a 440 Hz sine as an endless WAV stream)";
    url                  "url"                 Text  Input     Stream  "URL"       "pull the stream from this http(s):// URL (Icecast, SHOUTcast, any HTTP stream)";
    source_password      "source-password"     Text  Input     Stream  "PASSWORD"  "take the stream from source clients (Icecast PUT/SOURCE; SHOUTcast v1 on port+1)";
    source_user          "source-user"         Text  Input     Stream  "USER"      "user name of source clients (default source)";
    source_timeout       "source-timeout"      Dur   Input     Stream  "DURATION"  "drop a source client or upstream that sends nothing for this long (default 10s)";
    fallback_path        "fallback-path"       Text  Input     Stream  "FILE"      "an MP3 file looped to listeners while no source client is connected";
    reopen               "reopen"              Bool  Input     Stream  ""          "on source end or error reopen it and keep listeners (default true); false: drain and stop";
    close_idle           "close-idle"          Bool  Input     Stream  ""          "close the source when the last listener leaves; reopen it for the next";
    max_quiet_interval   "max-quiet-interval"  Dur   Input     Stream  "DURATION"  "close the source when it sends nothing for this long (0 = never)";
    source_bandwidth     "source-bandwidth"    Int   Input     Stream  "BYTES/S"   "read the source no faster than this (0 = as fast as it comes)";
    playlist             "playlist"            Text  Input     Stream  "FILE"      "play the files an .m3u lists, one after another in real time, looping (titles from their tags)";
    mute                 "mute"                Bool  Input     Stream  ""          "start muted: listeners hear silence until /admin/mute?mode=off (a file waits where it is)";
    frame_filter         "frame-filter"        Text  Framing   Stream  "NAME"      "framer: raw (or \"\"), mp3, adts, ts, ogg (default raw)";
    filter               "filter"              Text  Framing   Stream  "NAME"      "alias of -frame-filter";
    frame_bytes          "frame-bytes"         Int   Framing   Stream  "N"         "raw: the exact frame size; other framers: the largest frame (default 64; mp3: 2881, adts: 8191, ogg: 65307)";
    header_bytes         "header-bytes"        Int   Framing   Stream  "N"         "bytes of header read from each source opening and sent to every listener first";
    source_buffer        "source-buffer"       Int   Framing   Stream  "FRAMES"    "ring size in frames, more than 2 (default 64)";
    content_type         "content-type"        Text  Framing   Stream  "TYPE"      "Content-Type of the stream (default: the framer's; audio/wav with -tone)";
    burst_bytes          "burst-bytes"         Int   Listeners Stream  "N"         "recent audio a new listener gets at once, from a frame boundary (default 0)";
    client_max_bytes     "client-max-bytes"    Int   Listeners Stream  "N"         "end a listener after this many bytes, at a frame boundary (0 = never)";
    max_clients          "max-clients"         Int   Listeners Both    "N"         "most listeners at once (server-wide, and per mount in its file); more get 503 (default 1500)";
    listener_users       "listener-users"      Text  Listeners Server  "FILE"      "private streams: listeners log in as a name:hash line of FILE (re-read on SIGHUP)";
    listener_auth_url    "listener-auth-url"   Text  Listeners Both    "URL"       "ask this service whether to let each listener in (Icecast's URL authentication: listener_add, listener_remove)";
    version              "version"             Bool  Server    Server  ""          "print ringcast's version and exit";
    hash_password        "hash-password"       Bool  Listeners Server  ""          "read a password on stdin, print its hash for -listener-users, and exit";
    cors_origin          "cors-origin"         Text  Listeners Server  "ORIGINS"   "web pages (comma-separated origins, or *) that may read streams and status (default *)";
    write_timeout        "write-timeout"       Dur   Listeners Server  "DURATION"  "drop a listener whose socket takes nothing for this long (default 10s)";
    hls                  "hls"                 Bool  Listeners Stream  ""          "also publish the stream as HLS at /hls/index.m3u8 (mp3 or adts)";
    record               "record"              Text  Logging   Stream  "DIR"       "record the stream as it goes out into files in DIR, named by their UTC start";
    record_split         "record-split"        Dur   Logging   Stream  "DURATION"  "-record: a new file at every multiple of this since the epoch (default 1h: the top of the hour)";
    record_keep          "record-keep"         Dur   Logging   Stream  "DURATION"  "-record: delete files older than this (default: keep them all; a 42-day logger is 1008h)";
    hls_segment          "hls-segment"         Dur   Listeners Stream  "DURATION"  "HLS segment target duration (default 4s)";
    hls_window           "hls-window"          Int   Listeners Stream  "N"         "HLS segments in the playlist (default 6)";
    mount                "mount"               List  Mounts    Server  "PATH=FILE" "serve a stream at PATH, its flags in FILE (repeatable); unknown paths get 404";
    fallback_mount       "fallback-mount"      Text  Mounts    Stream  "PATH"      "in a mount's file: move its listeners to PATH while it has no source, and back";
    icy_name             "icy-name"            Text  Icecast   Stream  "TEXT"      "stream name (icy-name); a source client's or upstream's own wins";
    icy_genre            "icy-genre"           Text  Icecast   Stream  "TEXT"      "stream genre (icy-genre)";
    icy_description      "icy-description"     Text  Icecast   Stream  "TEXT"      "stream description (icy-description)";
    icy_url              "icy-url"             Text  Icecast   Stream  "URL"       "stream home page (icy-url)";
    icy_pub              "icy-pub"             Bool  Icecast   Stream  ""          "list the stream in public directories (icy-pub)";
    icy_metaint          "icy-metaint"         Int   Icecast   Stream  "N"         "audio bytes between ICY metadata blocks, for listeners that ask (default 16000)";
    title                "title"               Text  Icecast   Stream  "TEXT"      "the stream title until a source, upstream or admin call sets another";
    icecast              "icecast"             Text  Icecast   Stream  "URL"       "also send the stream to an Icecast server: icecast://user:pass@host:port/mount";
    admin_password       "admin-password"      Text  Icecast   Server  "PASSWORD"  "password of user admin for admin calls (/admin/metadata, /metrics)";
    station_name         "station-name"        Text  Icecast   Server  "NAME"      "the station's name, at the top of /status.html and in /status-json.xsl";
    station_description  "station-description" Text  Icecast   Server  "TEXT"      "a line about the station under its name on /status.html";
    link_key             "link-key"            Text  Link      Stream  "SECRET"    "the link's shared secret (serves the link to pullers when set)";
    link_key_file        "link-key-file"       Text  Link      Stream  "FILE"      "read the link's shared secret from FILE";
    link_pull            "link-pull"           List  Link      Stream  "URL"       "receive the stream over the link by pulling it from this origin (http(s)://host:port); repeat for more paths";
    link_push            "link-push"           List  Link      Stream  "URL"       "push the stream over the link to this receiver (http(s)://host:port); repeat for more paths";
    link_from            "link-from"           List  Link      Stream  "ADDRESS"   "send the Nth link path from this local address (repeatable, in the order of the paths; - for the default)";
    link_receive         "link-receive"        Bool  Link      Stream  ""          "receive the stream over the link from a pusher";
    link_delay           "link-delay"          Dur   Link      Stream  "DURATION"  "receiver: play this far behind the origin (default 5s)";
    fragment_duration    "fragment-duration"   Dur   Link      Stream  "DURATION"  "origin: fragment length, cut at frame boundaries (default 250ms)";
    link_buffer          "link-buffer"         Dur   Link      Stream  "DURATION"  "origin: how much stream to keep for receivers that reconnect (default 30s)";
    tls_ca               "tls-ca"              Text  Tls       Server  "FILE"      "PEM file of CA certificates trusted for https:// URLs, besides the system's";
    tls_address          "tls-address"         Text  Tls       Server  "HOST:PORT" "also serve everything over HTTPS here (needs -tls-cert and -tls-key)";
    tls_cert             "tls-cert"            Text  Tls       Server  "FILE"      "PEM certificate chain of -tls-address (re-read on SIGHUP)";
    tls_key              "tls-key"             Text  Tls       Server  "FILE"      "PEM private key of -tls-cert: PKCS#8, RSA or EC (re-read on SIGHUP)";
    address              "address"             Text  Server    Server  "HOST:PORT" "listen here (\":8000\" = every interface, \":0\" = any free port; default :80)";
    source_address       "source-address"      Text  Server    Server  "HOST:PORT" "source clients connect here only (SHOUTcast v1 on its port+1), not to -address";
    max_pending_per_ip   "max-pending-per-ip"  Int   Server    Server  "N"         "most connections one address (IPv6: one /64) may have that are slow to send their request (default 32)";
    max_listeners_per_ip "max-listeners-per-ip" Int  Server    Server  "N"         "most listeners one address may have (default: half of -max-clients; 0 = no limit)";
    trusted_proxies      "trusted-proxies"     Text  Server    Server  "CIDRS"     "proxies (comma-separated address blocks) whose X-Forwarded-For / Forwarded names the client";
    header_timeout       "header-timeout"      Dur   Server    Server  "DURATION"  "close a connection whose request has not arrived in this long (default 10s)";
    uid                  "uid"                 Text  Server    Server  "USER"      "switch to this user (a name or a uid) after binding the port (0 or our own: ignored)";
    cpu_max              "cpu-max"             Int   Server    Server  "N"         "run on at most N CPU cores (default: all)";
    log_level            "log-level"           Text  Logging   Server  "LEVEL"     "error, warn, info, debug or trace (default info)";
    debug                "debug"               Bool  Logging   Server  ""          "verbose logging (-log-level debug)";
    stat_log_interval    "stat-log-interval"   Dur   Logging   Server  "DURATION"  "log a statistics line this often, e.g. 30s (0 = never)";
    access_log           "access-log"          Text  Logging   Server  "FILE"      "a line per request in Icecast's access-log format, a listener's when it leaves (reopened on SIGHUP)";
    access_log_hash      "access-log-hash"     Bool  Logging   Server  ""          "-access-log writes a keyed hash of each address (random key per run) instead of the address";
}
