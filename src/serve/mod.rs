//! The HTTP side: the accept loop, one thread per connection, the listener sender.

pub mod accept;
pub mod http;
pub mod listener;
