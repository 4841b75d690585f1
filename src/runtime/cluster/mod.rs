//! Multi-node mode: a coordinator (`flow run`) and worker processes (`flow worker`) on one
//! timely cluster whose mesh sockets we open ourselves (see `shared/notes/timely.md`).
//!
//! - [`coordinator`]: starts `nodes` local worker processes, authenticates, ships the
//!   [`JobSpec`](super::JobSpec), broadcasts the mesh addresses, watches heartbeats, and commits
//!   (renames the outputs) only when every process reported ready.
//! - [`worker`]: one worker process; serves one job (`--once`) or many (a daemon).
//! - [`protocol`]: length-prefixed JSON frames, the token challenge-response, the mesh.
//!
//! Outputs on one machine: every worker of every process appends whole records to the one
//! temporary file the coordinator prepared (opened with `O_APPEND`), as threads do in one
//! process; the coordinator renames it when all are ready, so the result is the same single file
//! as single-node. Workers on other hosts (not built yet) would need storage all of them reach:
//! see docs/multinode.md.

pub mod coordinator;
pub mod protocol;
pub mod worker;

pub use coordinator::{ClusterOptions, MAX_NODES, run_multi};
