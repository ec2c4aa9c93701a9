//! `policies.maxMonthlyCostIncrease` (issue 14): a fleet's bound and a group's own, resolved.

const SPEC: &str = "fleets:
  - name: web
    region: ap-guangzhou
    policies: {maxMonthlyCostIncrease: 250.5}
    groups:
      - name: frontend
        replicas: 1
        zones: [ap-guangzhou-3]
        template: {ImageId: img-pmqg1cw7}
        policies: {maxMonthlyCostIncrease: 0}
      - name: backend
        replicas: 1
        zones: [ap-guangzhou-3]
        template: {ImageId: img-pmqg1cw7}
";

#[test]
fn the_fleet_bound_and_a_group_override_resolve() {
    let specs = cvmfleet_spec::load_str("web.yaml", SPEC).unwrap();
    let fleet = &specs.fleets[0];
    assert_eq!(fleet.policies.max_monthly_cost_increase.map(|a| a.get()), Some(250.5));
    // Only the group that sets its own bound carries one; the fleet's stays the fleet's.
    let own: Vec<Option<f64>> =
        fleet.groups.iter().map(|g| g.policies.max_monthly_cost_increase.map(|a| a.get())).collect();
    assert_eq!(own, [Some(0.0), None]);
    let unbounded =
        cvmfleet_spec::load_str("web.yaml", &SPEC.replace("maxMonthlyCostIncrease: 250.5", "prune: false"))
            .unwrap();
    assert_eq!(unbounded.fleets[0].policies.max_monthly_cost_increase, None);
}

#[test]
fn a_bound_that_is_not_a_finite_amount_is_rejected_with_its_position() {
    for bad in ["-1", ".inf", ".nan", "'100'"] {
        let text = SPEC.replace("250.5", bad);
        let errors = cvmfleet_spec::load_str("web.yaml", &text).expect_err(bad);
        let first = &errors.as_slice()[0];
        assert_eq!((first.line, first.column), (4, 40), "{bad}: {errors}");
    }
    assert!(cvmfleet_spec::MonthlyAmount::new(f64::NAN).is_none());
    assert!(cvmfleet_spec::MonthlyAmount::new(-0.01).is_none());
    assert_eq!(cvmfleet_spec::MonthlyAmount::new(0.0).map(cvmfleet_spec::MonthlyAmount::get), Some(0.0));
}
