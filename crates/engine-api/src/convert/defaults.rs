//! `GET /services/{id}?insertDefaults=true`: the spec with every option left out shown at the
//! value this swarm applies, as Docker's server fills them (what `docker service inspect` and
//! `service update --rollback` rely on to show and compare settings).

use super::ms_to_ns;
use crate::types as d;
use swarm_api::defaults::{RESTART_DELAY_MS, STOP_GRACE_PERIOD_MS};
use swarm_api::service_spec::Mode;
use swarm_api::ServiceSpec;

/// The update (and rollback) settings of a spec that names none (the orchestrator's).
fn default_update() -> d::UpdateConfig {
    super::spec::update_to_docker(&swarm_api::defaults::update_config())
}

pub fn insert(ours: &ServiceSpec, spec: &mut d::ServiceSpec) {
    let job = matches!(
        ours.mode,
        Some(Mode::ReplicatedJob(_)) | Some(Mode::GlobalJob(_))
    );
    // Jobs have no rolling updates; Docker leaves their update settings out too.
    if !job {
        spec.update_config.get_or_insert_with(default_update);
        spec.rollback_config.get_or_insert_with(default_update);
    }
    let t = &mut spec.task_template;
    t.restart_policy.get_or_insert_with(|| d::RestartPolicy {
        // A job's finished task is never run again (see the orchestrator).
        condition: if job { "on-failure" } else { "any" }.into(),
        delay: Some(ms_to_ns(RESTART_DELAY_MS)),
        max_attempts: Some(0),
        window: Some(0),
    });
    if let Some(c) = t.container_spec.as_mut() {
        c.stop_grace_period
            .get_or_insert(ms_to_ns(STOP_GRACE_PERIOD_MS));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unset_options_get_the_values_applied() {
        let ours = ServiceSpec::default();
        let mut spec = super::super::spec::to_docker(&ours);
        assert!(spec.update_config.is_none());
        insert(&ours, &mut spec);
        assert_eq!(spec.update_config.as_ref().unwrap().parallelism, 1);
        assert_eq!(spec.rollback_config.unwrap().monitor, 5_000_000_000);
        let r = spec.task_template.restart_policy.unwrap();
        assert_eq!(
            (r.condition.as_str(), r.delay),
            ("any", Some(5_000_000_000))
        );
        let c = spec.task_template.container_spec.unwrap();
        assert_eq!(c.stop_grace_period, Some(10_000_000_000));
    }
}
