//! The `gantry` binary's entry points: the command line (`cli/`), the HTTP API (`server/`),
//! the run object users read (`view`), and the wiring of adapters into an engine (`wiring`), and the allocator `gantry run`
//! starts with (`start_arena`).

pub mod cli;
pub mod lazy_store;
pub mod server;
pub mod start_arena;
pub mod view;
pub mod wiring;
