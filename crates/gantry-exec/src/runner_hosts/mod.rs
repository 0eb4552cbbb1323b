//! Hosts for ephemeral GitHub Actions runners (the `RunnerHost` port): `local` runs a runner
//! as a process in its own folder on this machine; `docker` in a container of the pool's
//! image. Either gives the runner its just-in-time config in its arguments (where the pool's
//! command asks for it) and in `ACTIONS_RUNNER_INPUT_JITCONFIG`, and marks it with the runner's
//! name and this server's instance, so a restarted server finds it again.

mod docker;
mod local;

pub use docker::DockerRunners;
pub use local::LocalRunners;
