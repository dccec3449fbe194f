//! The command line exactly as users type it: streamserve's flags in Go's `flag` syntax
//! (`goflag.rs`, their values' syntax in `values.rs`), every flag declared once (`flags.rs`),
//! `-help` for people (`help.rs`) and flags kept in files (`flagsfile.rs`). No validation
//! beyond syntax: that is `config`'s job.
//!
//! argh, which the design card names, was replaced here: it speaks only `--name value`, has
//! no way to set a switch to false, cannot group its help, and made every flag be listed
//! three times (README, design notes).
//!
//! A boundary module: flags files and mount files are read through it, so the compiler
//! refuses string slicing, indexing, unchecked arithmetic and lossy casts in all of `cli/`
//! (README, Security).
#![cfg_attr(
    not(test),
    deny(
        clippy::string_slice,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        clippy::cast_sign_loss
    )
)]

pub mod flags;
pub mod flagsfile;
mod goflag;
pub mod help;
mod values;
pub use values::parse_int;

pub use flags::Args;

/// What the command line asked for.
#[derive(Debug)]
pub enum Parsed {
    /// Run with these flags; `command` is everything after the flags (the `-exec` command).
    Run {
        args: Box<Args>,
        command: Vec<String>,
    },
    /// `-h`/`-help`: print this on stdout, exit 0.
    Help(String),
    /// A syntax error (unknown flag, missing or bad value): print on stderr, exit 2.
    Usage(String),
}

/// Parses argv (without the program name) with Go's `flag` rules.
pub fn parse(argv: &[String]) -> Parsed {
    match goflag::parse(argv) {
        Ok((args, command)) => Parsed::Run {
            args: Box::new(args),
            command,
        },
        Err(goflag::Stop::Help) => Parsed::Help(help::text()),
        Err(goflag::Stop::Bad(msg)) => {
            Parsed::Usage(format!("{msg}\nRun ringcast -help for the list of flags."))
        }
    }
}
