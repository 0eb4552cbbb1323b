//! The `gantry` binary's entry points: the command line (`cli/`), the HTTP API (`server/`),
//! the run object users read (`view`), and the wiring of adapters into an engine (`wiring`).

pub mod cli;
pub mod server;
pub mod view;
pub mod wiring;
