//! The operating system: signals, sockets and limits (`sys`), memory (`memory`), systemd's
//! notify socket, the stop flag, and the heartbeat the watchdog reads.

pub mod connect_from;
pub mod heartbeat;
pub mod memory;
pub mod notify;
pub mod shutdown;
pub mod sys;
