//! Task networking on this node: the data plane (`plane`), which alone programs the kernel
//! (`kernel`) for the tasks the executors start, following the managers' network view. See
//! docs/networking.md. Must not decide addresses: the allocator did, and the task carries them.

pub mod dns;
mod dns_wire;
mod kernel;
mod plane;

pub use dns::etc_dir as netns_etc_dir;

pub use kernel::forward_rules;
pub use kernel::KernelError;
pub use plane::{start, task_netns, NetError, NetPlane};
