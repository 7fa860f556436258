//! One tokio runtime per process for the async targets: building one per input would cost
//! more than most inputs, and the Raft target's member must keep running between inputs.

use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            // Fuzzing cannot start without a runtime: this is the harness, not the target.
            .unwrap_or_else(|e| panic!("fuzz runtime: {e}"))
    })
}

/// Runs `f` to completion on the shared runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}
