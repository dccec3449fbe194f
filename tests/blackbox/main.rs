//! Black-box tests: the real ringcast binary on 127.0.0.1, driven over sockets, files and
//! signals as a user, a player or an init system would. One test binary, many modules.

#[path = "../common/mod.rs"]
mod common;

mod browser;
mod cli;
mod docs;
mod fanout;
mod first_hour;
mod hls;
mod hostile;
mod hostile_link;
mod http;
mod https;
mod icecast;
mod keepalive;
mod lifecycle;
mod link;
mod link_paths;
mod mounts;
mod mp3;
mod mute;
mod ogg;
mod playlist;
mod realtime;
mod records;
mod security;
mod shape;
mod source;
mod systemd;
