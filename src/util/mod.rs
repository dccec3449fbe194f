//! Small helpers with no knowledge of streams: backoff, log rate limits, time formats,
//! deadlines, the CSPRNG, password hashes, and (in tests) the property-test harness.

pub mod backoff;
pub mod deadline;
#[cfg(test)]
pub mod fuzz;
pub mod password;
pub mod random;
pub mod ratelimit;
pub mod retry;
pub mod timefmt;
