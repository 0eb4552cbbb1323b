//! Events from forges (GitHub), parsed at the edge into a closed set of typed events. Nothing
//! behind the intake sees raw payload JSON.

pub mod github;
pub mod trigger;
