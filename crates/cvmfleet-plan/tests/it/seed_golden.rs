//! The seed's five RunInstances examples, written as fleet specs in `examples/`, must plan to
//! exactly the seed's requests, plus the derived ClientToken and the ownership tags (issue 5).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use cvmfleet_plan::{PlanOptions, desired, plan};
use cvmfleet_wire::flat;

/// The seed's requests, parameter for parameter (the password is the seed's literal, which a
/// spec only references; the test supplies it through the environment like a user would).
const SEED: [(&str, &str); 5] = [
    ("seed-1-minimal.yaml", "Placement.Zone=ap-guangzhou-2&ImageId=img-pmqg1cw7"),
    (
        "seed-2-prepaid.yaml",
        "Placement.Zone=ap-guangzhou-2&InstanceChargeType=PREPAID&InstanceChargePrepaid.Period=1\
         &InstanceChargePrepaid.RenewFlag=NOTIFY_AND_AUTO_RENEW&ImageId=img-pmqg1cw7&InstanceType=S1.SMALL1\
         &SystemDisk.DiskType=LOCAL_BASIC&SystemDisk.DiskSize=50&DataDisks.0.DiskType=LOCAL_BASIC&DataDisks.0.DiskSize=100\
         &InternetAccessible.InternetChargeType=TRAFFIC_POSTPAID_BY_HOUR&InternetAccessible.InternetMaxBandwidthOut=10\
         &InternetAccessible.PublicIpAssigned=TRUE&InstanceName=QCLOUD-TEST&LoginSettings.Password=PASSWORD\
         &EnhancedService.SecurityService.Enabled=TRUE&EnhancedService.MonitorService.Enabled=TRUE&InstanceCount=1",
    ),
    (
        "seed-3-postpaid.yaml",
        "Placement.Zone=ap-guangzhou-2&InstanceChargeType=POSTPAID_BY_HOUR&ImageId=img-pmqg1cw7&InstanceType=S2.SMALL1\
         &SystemDisk.DiskType=LOCAL_BASIC&SystemDisk.DiskSize=50&DataDisks.0.DiskType=LOCAL_BASIC&DataDisks.0.DiskSize=100\
         &InternetAccessible.InternetChargeType=TRAFFIC_POSTPAID_BY_HOUR&InternetAccessible.InternetMaxBandwidthOut=10\
         &InternetAccessible.PublicIpAssigned=TRUE&InstanceName=QCLOUD-TEST&LoginSettings.Password=PASSWORD\
         &EnhancedService.SecurityService.Enabled=TRUE&EnhancedService.MonitorService.Enabled=TRUE&InstanceCount=1",
    ),
    (
        "seed-4-cdh.yaml",
        "Placement.Zone=ap-guangzhou-2&Placement.HostIds.0=host-q88gab4i&InstanceChargeType=CDHPAID&ImageId=img-pmqg1cw7\
         &InstanceType=CDH_1C1G&SystemDisk.DiskType=LOCAL_BASIC&SystemDisk.DiskSize=50&DataDisks.0.DiskType=LOCAL_BASIC\
         &DataDisks.0.DiskSize=100&InternetAccessible.InternetChargeType=TRAFFIC_POSTPAID_BY_HOUR\
         &InternetAccessible.InternetMaxBandwidthOut=10&InternetAccessible.PublicIpAssigned=TRUE&InstanceName=QCLOUD-TEST\
         &LoginSettings.Password=PASSWORD&EnhancedService.SecurityService.Enabled=TRUE\
         &EnhancedService.MonitorService.Enabled=TRUE&InstanceCount=1",
    ),
    (
        "seed-5-private-ips.yaml",
        "InstanceType=S1.SMALL2&SystemDisk.DiskType=CLOUD_BASIC&SystemDisk.DiskSize=50&Placement.Zone=ap-hongkong-1\
         &ImageId=img-dkwyg6sr&VirtualPrivateCloud.SubnetId=subnet-dcs9x3gz&VirtualPrivateCloud.VpcId=vpc-1urkhbj4\
         &VirtualPrivateCloud.PrivateIpAddresses.0=10.0.0.18&VirtualPrivateCloud.PrivateIpAddresses.1=10.0.0.19&InstanceCount=2",
    ),
];

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Parameter names and values, with booleans in one spelling (the seed writes `TRUE`; JSON
/// bodies carry `true`; the service reads both).
fn normalized(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k, if v.eq_ignore_ascii_case("true") { "true".to_owned() } else { v }))
        .collect()
}

#[test]
fn seed_examples_plan_to_the_seed_requests() {
    for (file, query) in SEED {
        let specs =
            cvmfleet_spec::load_paths(&[examples_dir().join(file)]).unwrap_or_else(|e| panic!("{file}: {e}"));
        let fleets = desired::from_spec(&specs, cvmfleet_plan::DEFAULT_PROJECT);
        let plan = plan(&fleets, &BTreeMap::new(), PlanOptions::default());
        let creates: Vec<_> = plan.fleets.iter().flat_map(|f| &f.groups).flat_map(|g| &g.creates).collect();
        assert_eq!(creates.len(), 1, "{file}: one RunInstances call");
        let create = creates[0];

        let mut request = create.request.clone();
        let token = request.client_token.take().expect("a ClientToken");
        assert!(token.starts_with("cvmf2-") && token.len() <= 64, "{file}: {token}");
        let tags = request.tag_specification.take().expect("ownership tags");
        let keys: BTreeSet<&str> = tags.iter().flat_map(|s| s.tags.iter().map(|t| t.key.as_str())).collect();
        let mut expected = BTreeSet::from([
            "cvmfleet:project",
            "cvmfleet:fleet",
            "cvmfleet:group",
            "cvmfleet:template",
            "cvmfleet:token",
        ]);
        // Groups with explicit private IPs identify slots by IP, not by pool.
        if create.token_seed.pool_tag().is_some() {
            expected.insert("cvmfleet:pool");
        }
        assert_eq!(keys, expected, "{file}");
        if create.password.is_some() {
            request.login_settings.get_or_insert_with(Default::default).password = Some("PASSWORD".into());
        }
        let sent = normalized(flat::flatten(&request));
        let seed = normalized(form_urlencoded::parse(query.as_bytes()).into_owned());
        // InstanceCount=1 is the API default: the seed writes it out in some examples only.
        let mut seed_without_default = seed.clone();
        if !query.contains("InstanceCount") {
            seed_without_default.insert("InstanceCount".into(), "1".into());
        }
        assert_eq!(sent, seed_without_default, "{file}");
    }
}

#[test]
fn every_example_and_starter_spec_plans() {
    let dirs = [examples_dir(), PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../specs")];
    let specs = cvmfleet_spec::load_paths(&dirs).unwrap_or_else(|e| panic!("{e}"));
    let fleets = desired::from_spec(&specs, cvmfleet_plan::DEFAULT_PROJECT);
    let plan = plan(&fleets, &BTreeMap::new(), PlanOptions::default());
    assert!(plan.summary.create > 0);
    assert!(plan.refusals.is_empty());
}
