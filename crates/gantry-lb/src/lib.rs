//! Load balancers behind the [`TargetGroups`](gantry_engine::ports::TargetGroups) port.
//! `haproxy`: HAProxy's Runtime API over its admin socket — servers added, enabled, drained and
//! deleted in a backend while it runs, their health read from `show stat`.

mod haproxy;

pub use haproxy::{HaproxyGroup, HaproxyTargetGroups};
