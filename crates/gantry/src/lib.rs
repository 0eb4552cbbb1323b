//! The `gantry` binary's entry points: the command line (`cli/`), the HTTP API (`server/`),
//! the web dashboard (`dashboard/`), the run object users read (`view`), the data dir a process holds (`data_dir`), and the wiring of adapters into an engine (`wiring`).

pub mod agent;
pub mod cli;
pub mod dashboard;
pub mod data_dir;
pub mod outbound;
pub mod server;
pub mod view;
pub mod wiring;
