//! Issue 12 §1: a spec set names its project once; files that disagree are a positioned error.

const FLEET_A: &str = "project: shop\nfleets:\n  - name: a\n    region: ap-guangzhou\n    groups:\n      - name: g\n        replicas: 1\n        zones: [ap-guangzhou-3]\n        template: {ImageId: img-pmqg1cw7}\n";
const FLEET_B: &str = "fleets:\n  - name: b\n    region: ap-guangzhou\n    groups:\n      - name: g\n        replicas: 1\n        zones: [ap-guangzhou-3]\n        template: {ImageId: img-pmqg1cw7}\n";

#[test]
fn one_file_declares_the_project_for_the_set() {
    let set = cvmfleet_spec::load_sources(&[("a.yaml", FLEET_A), ("b.yaml", FLEET_B)]).expect("valid");
    assert_eq!(set.project.as_deref(), Some("shop"));
    let none = cvmfleet_spec::load_sources(&[("b.yaml", FLEET_B)]).expect("valid");
    assert_eq!(none.project, None);
}

#[test]
fn files_naming_different_projects_are_an_error_at_the_second() {
    let other = format!("project: blog\n{FLEET_B}");
    let error = cvmfleet_spec::load_sources(&[("a.yaml", FLEET_A), ("b.yaml", &other)]).unwrap_err();
    insta::assert_snapshot!(error.to_string());
}

#[test]
fn a_project_name_has_the_fleet_name_shape() {
    let bad = FLEET_A.replace("project: shop", "project: Shop_1");
    let error = cvmfleet_spec::load_sources(&[("a.yaml", &bad)]).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("a.yaml:1:10"), "{text}");
}
