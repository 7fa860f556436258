//! The gRPC health service every manager serves on both its sockets.

use swarm_api::*;

/// Health: SERVING while the process runs (readiness probes, `swarmctl` checks).
pub(crate) fn health_service() -> health_server::HealthServer<Health> {
    health_server::HealthServer::new(Health)
}

pub struct Health;

#[tonic::async_trait]
impl health_server::Health for Health {
    async fn check(
        &self,
        _req: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }
}
