//! The `slimgemm` command-line tool as a library: the benchmark suites with their vendor
//! baselines ([`suite`]) and the subcommands ([`cli`]). The `slimgemm` binary is
//! [`cli::main`]; the criterion benches and the tool's tests use [`suite`].
#![warn(missing_docs)]

pub mod cli;
pub mod suite;
