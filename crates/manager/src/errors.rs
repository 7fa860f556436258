//! Turning write errors into gRPC statuses with one-line messages.

use crate::proposer::WriteError;
use swarm_store::ApplyError;
use tonic::Status;

pub(crate) fn status(e: WriteError) -> Status {
    match &e {
        WriteError::Refused(ApplyError::NotFound { .. }) => Status::not_found(e.to_string()),
        WriteError::Refused(ApplyError::AlreadyExists { .. } | ApplyError::NameConflict { .. }) => {
            Status::already_exists(e.to_string())
        }
        WriteError::Refused(ApplyError::Conflict { .. }) => Status::aborted(e.to_string()),
        WriteError::Refused(ApplyError::Invalid(_)) => Status::invalid_argument(e.to_string()),
        WriteError::NotLeader { .. } | WriteError::Unavailable(_) => {
            Status::unavailable(e.to_string())
        }
    }
}
