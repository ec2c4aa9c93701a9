//! The RunInstances reference (`shared/seed/000_…`): its five examples succeed unmodified in
//! every request style, and each code of its error table comes back for the input it
//! describes.

use cvmfleet_emulator::EmulatorConfig;
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::flat;
use cvmfleet_wire::sign::V1Method;
use serde_json::{Value, json};

use crate::common::{Client, Style, config, start};

/// The five examples: (region, the query of the example URL as printed, common parameters
/// left out).
pub const EXAMPLES: [(&str, &str); 5] = [
    ("ap-guangzhou", "Placement.Zone=ap-guangzhou-2&ImageId=img-pmqg1cw7"),
    (
        "ap-guangzhou",
        "Placement.Zone=ap-guangzhou-2&InstanceChargeType=PREPAID&InstanceChargePrepaid.Period=1\
         &InstanceChargePrepaid.RenewFlag=NOTIFY_AND_AUTO_RENEW&ImageId=img-pmqg1cw7&InstanceType=S1.SMALL1\
         &SystemDisk.DiskType=LOCAL_BASIC&SystemDisk.DiskSize=50&DataDisks.0.DiskType=LOCAL_BASIC&DataDisks.0.DiskSize=100\
         &InternetAccessible.InternetChargeType=TRAFFIC_POSTPAID_BY_HOUR&InternetAccessible.InternetMaxBandwidthOut=10\
         &InternetAccessible.PublicIpAssigned=TRUE&InstanceName=QCLOUD-TEST&LoginSettings.Password=Qcloud@TestApi123++\
         &EnhancedService.SecurityService.Enabled=TRUE&EnhancedService.MonitorService.Enabled=TRUE&InstanceCount=1",
    ),
    (
        "ap-guangzhou",
        "Placement.Zone=ap-guangzhou-2&InstanceChargeType=POSTPAID_BY_HOUR&ImageId=img-pmqg1cw7&InstanceType=S2.SMALL1\
         &SystemDisk.DiskType=LOCAL_BASIC&SystemDisk.DiskSize=50&DataDisks.0.DiskType=LOCAL_BASIC&DataDisks.0.DiskSize=100\
         &InternetAccessible.InternetChargeType=TRAFFIC_POSTPAID_BY_HOUR&InternetAccessible.InternetMaxBandwidthOut=10\
         &InternetAccessible.PublicIpAssigned=TRUE&InstanceName=QCLOUD-TEST&LoginSettings.Password=Qcloud@TestApi123++\
         &EnhancedService.SecurityService.Enabled=TRUE&EnhancedService.MonitorService.Enabled=TRUE&InstanceCount=1",
    ),
    (
        "ap-guangzhou",
        "Placement.Zone=ap-guangzhou-2&Placement.HostIds.0=host-q88gab4i&InstanceChargeType=CDHPAID&ImageId=img-pmqg1cw7\
         &InstanceType=CDH_1C1G&SystemDisk.DiskType=LOCAL_BASIC&SystemDisk.DiskSize=50&DataDisks.0.DiskType=LOCAL_BASIC\
         &DataDisks.0.DiskSize=100&InternetAccessible.InternetChargeType=TRAFFIC_POSTPAID_BY_HOUR\
         &InternetAccessible.InternetMaxBandwidthOut=10&InternetAccessible.PublicIpAssigned=TRUE&InstanceName=QCLOUD-TEST\
         &LoginSettings.Password=Qcloud@TestApi123++&EnhancedService.SecurityService.Enabled=TRUE\
         &EnhancedService.MonitorService.Enabled=TRUE&InstanceCount=1",
    ),
    (
        "ap-hongkong",
        "InstanceType=S1.SMALL2&SystemDisk.DiskType=CLOUD_BASIC&SystemDisk.DiskSize=50&Placement.Zone=ap-hongkong-1\
         &ImageId=img-dkwyg6sr&VirtualPrivateCloud.SubnetId=subnet-dcs9x3gz&VirtualPrivateCloud.VpcId=vpc-1urkhbj4\
         &VirtualPrivateCloud.PrivateIpAddresses.0=10.0.0.18&VirtualPrivateCloud.PrivateIpAddresses.1=10.0.0.19\
         &InstanceCount=2",
    ),
];

/// The example's parameters as written (values are not URL-encoded in the reference).
pub fn pairs(query: &str) -> Vec<(String, String)> {
    query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// The example as a JSON body, for POST.
pub fn as_json(query: &str) -> Value {
    let request: RunInstancesRequest = flat::from_pairs(&pairs(query)).expect("the example reads");
    serde_json::to_value(request).expect("serializes")
}

#[tokio::test]
async fn the_five_examples_succeed_in_every_style() {
    for style in
        [Style::PostTc3, Style::GetTc3, Style::GetV1(V1Method::HmacSha1), Style::PostV1(V1Method::HmacSha256)]
    {
        let emulator = start(config()).await;
        for (n, (region, query)) in EXAMPLES.iter().enumerate() {
            let client = Client::new(&emulator).region(region);
            // GET and v1 carry the pairs as written; POST carries the same request as JSON.
            let params = match style {
                Style::PostTc3 => as_json(query),
                _ => {
                    let mut map = serde_json::Map::new();
                    for (k, v) in pairs(query) {
                        map.insert(k, Value::String(v));
                    }
                    Value::Object(map)
                }
            };
            let reply = client.send(style, "RunInstances", &params).await.expect("transport");
            reply.assert_envelope();
            let ids = reply.instance_ids();
            assert_eq!(
                ids.len(),
                if n == 4 { 2 } else { 1 },
                "example {} in {style:?}: {}",
                n + 1,
                reply.body
            );
        }
        let hk = Client::new(&emulator).region("ap-hongkong");
        let listed = hk.call("DescribeInstances", json!({})).await;
        let set = listed.ok()["InstanceSet"].as_array().cloned().unwrap_or_default();
        let ips: Vec<&str> = set.iter().filter_map(|i| i["PrivateIpAddresses"][0].as_str()).collect();
        assert_eq!(ips, ["10.0.0.18", "10.0.0.19"]);
        assert_eq!(set[0]["VirtualPrivateCloud"]["SubnetId"], "subnet-dcs9x3gz");
        let gz = Client::new(&emulator).call("DescribeInstances", json!({"Limit": 100})).await;
        let set = gz.ok()["InstanceSet"].as_array().cloned().unwrap_or_default();
        assert_eq!(set.len(), 4);
        assert_eq!(set[1]["InstanceChargeType"], "PREPAID");
        assert_eq!(set[1]["RenewFlag"], "NOTIFY_AND_AUTO_RENEW");
        assert_eq!(set[1]["InstanceName"], "QCLOUD-TEST");
        assert_eq!(set[1]["DataDisks"][0]["DiskSize"], 100);
        assert!(set[1]["PublicIpAddresses"][0].is_string());
        assert_eq!(set[3]["Placement"]["HostId"], "host-q88gab4i");
        assert_eq!(set[3]["CPU"], 1);
        assert_eq!(set[0]["InstanceType"], "S1.SMALL1");
        emulator.shutdown().await.expect("shutdown");
    }
}

/// One input of the error table: region, params, and the code it must get.
fn error_cases() -> Vec<(&'static str, &'static str, Value)> {
    let zone = |z: &str| json!({"Zone": z});
    let base = |extra: Value| {
        let mut v = json!({"Placement": zone("ap-guangzhou-2"), "ImageId": "img-pmqg1cw7"});
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        v
    };
    let hk_vpc = |ips: &[&str]| {
        json!({
            "Placement": zone("ap-hongkong-1"), "ImageId": "img-dkwyg6sr", "InstanceCount": ips.len(),
            "VirtualPrivateCloud": {"VpcId": "vpc-1urkhbj4", "SubnetId": "subnet-dcs9x3gz", "PrivateIpAddresses": ips}
        })
    };
    vec![
        ("AccountQualificationRestrictions", "ap-guangzhou", base(json!({}))),
        ("InstancesQuotaLimitExceeded", "ap-guangzhou", base(json!({"InstanceCount": 6}))),
        ("InvalidClientToken.TooLong", "ap-guangzhou", base(json!({"ClientToken": "t".repeat(65)}))),
        (
            "InvalidHostId.NotFound",
            "ap-guangzhou",
            base(json!({"InstanceChargeType": "CDHPAID", "InstanceType": "CDH_1C1G",
                "Placement": {"Zone": "ap-guangzhou-2", "HostIds": ["host-zzzzzzzz"]}})),
        ),
        ("InvalidInstanceName.TooLong", "ap-guangzhou", base(json!({"InstanceName": "n".repeat(61)}))),
        ("InvalidInstanceType.Malformed", "ap-guangzhou", base(json!({"InstanceType": "s5medium2"}))),
        ("InvalidParameter.InvalidIpFormat", "ap-hongkong", hk_vpc(&["10.0.0.300"])),
        (
            "InvalidParameterCombination",
            "ap-guangzhou",
            base(json!({"LoginSettings": {"Password": "Qcloud@TestApi123++", "KeyIds": ["skey-3glfot13"]}})),
        ),
        ("InvalidParameterValue", "ap-guangzhou", base(json!({"InstanceChargeType": "MONTHLY"}))),
        ("InvalidParameterValue.Range", "ap-guangzhou", base(json!({"InstanceCount": 0}))),
        ("InvalidPassword", "ap-guangzhou", base(json!({"LoginSettings": {"Password": "short"}}))),
        (
            "InvalidPeriod",
            "ap-guangzhou",
            base(json!({"InstanceChargeType": "PREPAID", "InstanceChargePrepaid": {"Period": 13}})),
        ),
        (
            "InvalidPermission",
            "ap-guangzhou",
            base(json!({"Placement": zone("ap-guangzhou-3"), "InstanceType": "GN10X.2XLARGE40"})),
        ),
        ("InvalidZone.MismatchRegion", "ap-guangzhou", base(json!({"Placement": zone("ap-hongkong-1")}))),
        ("MissingParameter", "ap-guangzhou", json!({"Placement": zone("ap-guangzhou-2")})),
        ("VpcAddrNotInSubNet", "ap-hongkong", hk_vpc(&["10.0.5.18"])),
        ("VpcIpIsUsed", "ap-hongkong", hk_vpc(&["10.0.0.18"])),
    ]
}

/// Every code of the reference's error table, for the input its description gives; the
/// messages are snapshotted for review.
#[tokio::test]
async fn every_code_of_the_error_table_is_returned_for_its_input() {
    let mut config = config().instance_quota(Some(5));
    config.unqualified_secret_ids = ["AKIDunqualifiedAccount0000000000000".to_owned()].into();
    let config = config.add_credentials(
        "AKIDunqualifiedAccount0000000000000",
        cvmfleet_wire::sign::SecretKey::new("unqualifiedKey"),
    );
    let emulator = start(config).await;
    // An address in use, for VpcIpIsUsed.
    let hk = Client::new(&emulator).region("ap-hongkong");
    hk.call("RunInstances", error_cases().last().map(|c| c.2.clone()).unwrap_or_default()).await.ok();

    let mut transcript = String::new();
    for (code, region, params) in error_cases() {
        let client = if code == "AccountQualificationRestrictions" {
            Client::new(&emulator).credentials("AKIDunqualifiedAccount0000000000000", "unqualifiedKey")
        } else {
            Client::new(&emulator)
        }
        .region(region);
        let reply = client.call("RunInstances", params).await;
        reply.assert_envelope();
        assert_eq!(reply.code(), code, "{}", reply.body);
        transcript.push_str(&format!(
            "{code}: {}\n",
            reply.response()["Error"]["Message"].as_str().unwrap_or_default()
        ));
    }
    // Nothing but the first instance was created.
    assert_eq!(emulator.stats().instances, 1);
    insta::assert_snapshot!(transcript);
}

/// The validation of the API model beyond the table, one case per rule.
#[tokio::test]
async fn model_validation_codes() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let base = json!({"Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7"});
    let with = |extra: Value| {
        let mut v = base.clone();
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        v
    };
    let cases = [
        ("DryRunOperation", with(json!({"DryRun": true}))),
        ("InvalidImageId.Malformed", with(json!({"ImageId": "img-1"}))),
        ("InvalidImageId.NotFound", with(json!({"ImageId": "img-zzzzzzzz"}))),
        ("InvalidParameterValue.InstanceTypeNotFound", with(json!({"InstanceType": "S9.HUGE"}))),
        ("ResourceUnavailable.InstanceType", with(json!({"InstanceType": "S6.MEDIUM4"}))),
        ("InvalidParameterValue.Range", with(json!({"InstanceCount": 101}))),
        ("InvalidParameterValue.Range", with(json!({"SystemDisk": {"DiskSize": 5000}}))),
        ("InvalidParameterCombination", with(json!({"InstanceType": "CDH_1C1G"}))),
        ("MissingParameter", with(json!({"InstanceChargeType": "CDHPAID", "InstanceType": "CDH_1C1G"}))),
        ("MissingParameter", with(json!({"InstanceChargeType": "PREPAID"}))),
        (
            "InvalidParameterValue.VpcIdNotExist",
            with(json!({"VirtualPrivateCloud": {"VpcId": "vpc-1urkhbj4", "SubnetId": "subnet-dcs9x3gz"}})),
        ),
        (
            "InvalidParameterValue.SubnetNotExist",
            with(json!({"VirtualPrivateCloud": {"VpcId": "vpc-2zxc8w1p", "SubnetId": "subnet-zzzzzzzz"}})),
        ),
        (
            "InvalidParameterValue.SubnetIdZoneIdNotMatch",
            with(json!({"VirtualPrivateCloud": {"VpcId": "vpc-2zxc8w1p", "SubnetId": "subnet-h4b2y8m3"}})),
        ),
        (
            "InvalidParameterCombination",
            with(
                json!({"VirtualPrivateCloud": {"VpcId": "vpc-2zxc8w1p", "SubnetId": "subnet-g3a1x7k2", "PrivateIpAddresses": ["10.0.1.5", "10.0.1.6"]}}),
            ),
        ),
        ("InvalidParameterValue.IllegalHostName", with(json!({"HostName": "-bad-"}))),
        ("InvalidSecurityGroupId.NotFound", with(json!({"SecurityGroupIds": ["sg-zzzzzzzz"]}))),
        ("InvalidKeyPairId.NotFound", with(json!({"LoginSettings": {"KeyIds": ["skey-zzzzzzzz"]}}))),
        (
            "InvalidPassword",
            with(json!({"ImageId": "img-9qrfy1xt", "LoginSettings": {"Password": "abcdefgh12"}})),
        ),
        (
            "InvalidParameter.ParameterConflict",
            with(json!({"LoginSettings": {"KeepImageLogin": "TRUE", "KeyIds": ["skey-3glfot13"]}})),
        ),
        ("InvalidParameterValue.InvalidUserDataFormat", with(json!({"UserData": "%%%"}))),
        ("InvalidInstanceName.TooLong", with(json!({"InstanceName": "x".repeat(129)}))),
        ("InvalidInstanceName.TooLong", with(json!({"InstanceName": "名".repeat(21)}))),
        (
            "FailedOperation.TagKeyReserved",
            with(
                json!({"TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "qcloud:x", "Value": "1"}]}]}),
            ),
        ),
        ("UnknownParameter", with(json!({"Bogus": 1}))),
        ("InvalidParameter", with(json!({"InstanceCount": "two"}))),
        (
            "ResourceInsufficient.SpecifiedInstanceType",
            with(
                json!({"Placement": {"Zone": "ap-guangzhou-3", "HostIds": ["host-3e8v7a0d"]}, "InstanceChargeType": "CDHPAID", "InstanceType": "CDH_4C16G"}),
            ),
        ),
    ];
    for (code, params) in cases {
        let reply = client.call("RunInstances", params.clone()).await;
        reply.assert_envelope();
        assert_eq!(reply.code(), code, "{params} -> {}", reply.body);
    }
    assert_eq!(emulator.stats().instances, 0);
    // DryRun with valid input creates nothing, and the same request then succeeds.
    let reply = client.call("RunInstances", with(json!({"InstanceCount": 2}))).await;
    assert_eq!(reply.instance_ids().len(), 2);
}

#[tokio::test]
async fn example_ids_follow_the_documented_shape() {
    let emulator = start(EmulatorConfig::default().rate_limits(false)).await;
    let reply = Client::new(&emulator).call("RunInstances", as_json(EXAMPLES[0].1)).await;
    for id in reply.instance_ids() {
        assert!(id.starts_with("ins-") && id.len() == 12, "{id}");
    }
}
