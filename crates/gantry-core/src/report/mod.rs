//! What Gantry posts where people look: the text of a run's pull-request comment.

pub mod comment;
