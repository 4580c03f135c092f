//! The benchmark suites (`quick`, `full`, `dlmc`), the vendor baselines they are timed
//! against, the roofline and the chart. The workloads themselves, their inputs and the verify
//! lists are the library's ([`slimgemm::workload`]).

pub mod baseline;
pub mod dlmc;
pub mod plot;
pub mod run;
pub mod suites;

pub use slimgemm::workload::*;
pub use suites::{full, quick};
