//! The swarm subset of the Docker Engine API (`swarmd --listen-docker-api`), so the `docker`
//! CLI can drive this swarm: `docker node ls`, `docker service create|ls|ps|scale|update|rm`,
//! `docker node update`, `docker network create|ls|inspect|rm`, `docker secret|config
//! create|ls|inspect|rm`. A translation layer only: every read and write goes through the
//! control API (`swarm_api::control_server::Control`), which validates, forwards to the leader
//! and proposes; this crate never touches the store, Raft or the network beyond its socket.

mod backend;
pub mod convert;
mod error;
mod events;
mod gojson;
mod limits;
mod logs;
mod networks;
mod nodes;
mod payloads;
mod reply;
mod request;
mod router;
mod server;
mod services;
mod swarm;
mod system;
mod tasks;
pub mod types;

pub use backend::{Backend, ControlApi, LocalNode, LogStream, WatchStream};
pub use error::ApiError;
pub use server::{serve, status_of};

/// The API version we speak, reported by `/_ping` and `/version`: clients newer than this
/// negotiate down to it.
pub const API_VERSION: &str = "1.41";
/// The oldest version-prefixed path we accept.
pub const MIN_API_VERSION: &str = "1.24";
/// The newest version-prefixed path we accept (the newest Docker CLI's own), for clients that
/// pin a version instead of negotiating; the shapes served are those of `API_VERSION`.
pub const MAX_ACCEPTED_API_VERSION: (u32, u32) = (1, 51);
