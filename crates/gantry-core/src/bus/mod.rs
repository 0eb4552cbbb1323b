//! The event bus's pure parts: EventBridge event patterns (`pattern`, `matcher`, `numeric`,
//! `anything_but`), events as
//! the matcher sees them (`event`), and many rules matched together (`ruleset`).

pub mod anything_but;
pub mod deploy_target;
pub mod entry;
pub mod event;
pub mod matcher;
pub mod numeric;
pub mod pattern;
pub mod rule;
pub mod ruleset;
pub mod scan;
pub mod schedule;
pub mod template;

pub use pattern::{Pattern, PatternError};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod forms_tests;
