//! The HTTP side: the accept loop, one thread per connection, the listener sender.

boundary! {
    pub mod accept;
    pub mod admin;
    pub mod http;
    pub mod listener;
}
pub mod status;
