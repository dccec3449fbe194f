//! Outputs: where ringcast sends its stream besides its own listeners.

pub mod icecast;
