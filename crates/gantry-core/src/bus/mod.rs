//! The event bus's pure parts: EventBridge event patterns (`pattern`, `matcher`), events as
//! the matcher sees them (`event`), and many rules matched together (`ruleset`).

pub mod deploy_target;
pub mod entry;
pub mod event;
pub mod matcher;
pub mod pattern;
pub mod rule;
pub mod ruleset;
pub mod scan;
pub mod schedule;
pub mod template;

pub use pattern::{Pattern, PatternError};

#[cfg(test)]
mod tests;
