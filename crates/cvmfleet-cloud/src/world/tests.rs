//! Unit tests of the world's rules, with the clock as a plain number.

use std::sync::Arc;

use cvmfleet_wire::api::{
    DescribeInstancesRequest, ModifyInstancesAttributeRequest, RunInstancesRequest, StartInstancesRequest,
    StopInstancesRequest, TerminateInstancesRequest,
};
use cvmfleet_wire::model::{
    Filter, InstanceChargePrepaid, Placement, Tag, TagSpecification, VirtualPrivateCloud,
};

use super::*;
use crate::catalog::Catalog;

const T0: i64 = 1_700_000_000_000;

fn settings(mode: TokenMode) -> Settings {
    Settings {
        boot_delay_ms: 3_000,
        stop_delay_ms: 2_000,
        terminate_delay_ms: 3_000,
        launch_failed_retention_ms: 60_000,
        instance_quota: Some(20),
        token_mode: mode,
        unqualified_secret_ids: ["AKIDunqualified".to_owned()].into(),
        account_uin: "100000000001".to_owned(),
    }
}

fn world(mode: TokenMode) -> World {
    World::new(Arc::new(CatalogIndex::new(Catalog::builtin())), settings(mode), 42)
}

fn ctx(region: &str, now_ms: i64) -> Ctx {
    Ctx { secret_id: "AKIDtest".into(), region: region.into(), request_id: "req-1".into(), now_ms }
}

fn basic(zone: &str) -> RunInstancesRequest {
    RunInstancesRequest {
        placement: Some(Placement { zone: zone.into(), ..Placement::default() }),
        image_id: Some("img-pmqg1cw7".into()),
        ..RunInstancesRequest::default()
    }
}

fn run(w: &mut World, c: &Ctx, req: &RunInstancesRequest) -> Result<Vec<String>, ApiError> {
    w.run_instances(c, req, &mut |_| LaunchFate::default()).map(|(r, _)| r.instance_id_set)
}

fn state_of(w: &World, id: &str) -> String {
    w.record_by_id(id).map(|r| r.instance.instance_state.clone()).unwrap_or_else(|| "GONE".into())
}

use crate::api_error::ApiError;

#[test]
fn lifecycle_follows_deadlines() {
    let mut w = world(TokenMode::Lenient);
    let c = ctx("ap-guangzhou", T0);
    let ids = run(&mut w, &c, &basic("ap-guangzhou-3")).unwrap();
    let id = &ids[0];
    assert_eq!(state_of(&w, id), "PENDING");
    w.advance(T0 + 2_999);
    assert_eq!(state_of(&w, id), "PENDING");
    w.advance(T0 + 3_000);
    assert_eq!(state_of(&w, id), "RUNNING");
    let r = w.record_by_id(id).unwrap();
    assert_eq!(r.instance.latest_operation_state.as_deref(), Some("SUCCESS"));

    let stop = StopInstancesRequest { instance_ids: ids.clone(), ..StopInstancesRequest::default() };
    w.stop(&ctx("ap-guangzhou", T0 + 4_000), &stop).unwrap();
    assert_eq!(state_of(&w, id), "STOPPING");
    assert_eq!(
        w.stop(&ctx("ap-guangzhou", T0 + 4_001), &stop).unwrap_err().code,
        "UnsupportedOperation.InstanceStateStopping"
    );
    w.advance(T0 + 6_000);
    assert_eq!(state_of(&w, id), "STOPPED");
    w.start(&ctx("ap-guangzhou", T0 + 7_000), &StartInstancesRequest { instance_ids: ids.clone() }).unwrap();
    assert_eq!(state_of(&w, id), "STARTING");
    w.advance(T0 + 10_000);
    assert_eq!(state_of(&w, id), "RUNNING");

    let term =
        TerminateInstancesRequest { instance_ids: ids.clone(), ..TerminateInstancesRequest::default() };
    w.terminate(&ctx("ap-guangzhou", T0 + 11_000), &term).unwrap();
    assert_eq!(state_of(&w, id), "TERMINATING");
    let again = w.terminate(&ctx("ap-guangzhou", T0 + 11_001), &term).unwrap_err();
    assert_eq!(again.code, "UnsupportedOperation.InstanceStateTerminating");
    w.advance(T0 + 14_000);
    assert_eq!(state_of(&w, id), "GONE");
    let gone = w.terminate(&ctx("ap-guangzhou", T0 + 14_001), &term).unwrap_err();
    assert_eq!(gone.code, "InvalidInstanceId.NotFound");
}

#[test]
fn prepaid_instances_go_to_the_recycle_bin_first() {
    let mut w = world(TokenMode::Lenient);
    let req = RunInstancesRequest {
        instance_charge_type: Some("PREPAID".into()),
        instance_charge_prepaid: Some(InstanceChargePrepaid { period: 1, renew_flag: None }),
        ..basic("ap-guangzhou-2")
    };
    let ids = run(&mut w, &ctx("ap-guangzhou", T0), &req).unwrap();
    w.advance(T0 + 3_000);
    let r = w.record_by_id(&ids[0]).unwrap();
    assert!(r.instance.expired_time.is_some());
    assert_eq!(r.instance.renew_flag.as_deref(), Some("NOTIFY_AND_MANUAL_RENEW"));
    let term =
        TerminateInstancesRequest { instance_ids: ids.clone(), ..TerminateInstancesRequest::default() };
    w.terminate(&ctx("ap-guangzhou", T0 + 4_000), &term).unwrap();
    w.advance(T0 + 100_000);
    assert_eq!(state_of(&w, &ids[0]), "SHUTDOWN");
    w.terminate(&ctx("ap-guangzhou", T0 + 100_000), &term).unwrap();
    assert_eq!(state_of(&w, &ids[0]), "TERMINATING");
    w.advance(T0 + 103_000);
    assert_eq!(state_of(&w, &ids[0]), "GONE");
}

#[test]
fn launch_failures_release_their_resources_and_expire() {
    let mut w = world(TokenMode::Lenient);
    let c = ctx("ap-hongkong", T0);
    let mut req = basic("ap-hongkong-1");
    req.image_id = Some("img-dkwyg6sr".into());
    req.virtual_private_cloud = Some(VirtualPrivateCloud {
        vpc_id: "vpc-1urkhbj4".into(),
        subnet_id: "subnet-dcs9x3gz".into(),
        private_ip_addresses: Some(vec!["10.0.0.18".into()]),
        ..VirtualPrivateCloud::default()
    });
    let (resp, _) =
        w.run_instances(&c, &req, &mut |_| LaunchFate { fails: true, ..LaunchFate::default() }).unwrap();
    let id = &resp.instance_id_set[0];
    // While pending the address is taken.
    assert_eq!(run(&mut w, &c, &req).unwrap_err().code, "VpcIpIsUsed");
    w.advance(T0 + 3_000);
    assert_eq!(state_of(&w, id), "LAUNCH_FAILED");
    assert_eq!(w.record_by_id(id).unwrap().instance.latest_operation_state.as_deref(), Some("FAILED"));
    // The failed launch no longer holds the address.
    run(&mut w, &ctx("ap-hongkong", T0 + 3_000), &req).unwrap();
    w.advance(T0 + 63_000);
    assert_eq!(state_of(&w, id), "GONE");
}

#[test]
fn client_tokens_replay_and_strict_mode_refuses_changes() {
    for mode in [TokenMode::Lenient, TokenMode::Strict] {
        let mut w = world(mode);
        let c = ctx("ap-guangzhou", T0);
        let req = RunInstancesRequest {
            client_token: Some("tok-1".into()),
            instance_count: Some(2),
            ..basic("ap-guangzhou-3")
        };
        let first = run(&mut w, &c, &req).unwrap();
        assert_eq!(run(&mut w, &c, &req).unwrap(), first);
        assert_eq!(w.len(), 2);
        // Terminated and gone, the token still answers with the original IDs.
        let term =
            TerminateInstancesRequest { instance_ids: first.clone(), ..TerminateInstancesRequest::default() };
        w.advance(T0 + 3_000);
        w.terminate(&ctx("ap-guangzhou", T0 + 3_000), &term).unwrap();
        w.advance(T0 + 10_000);
        assert_eq!(w.len(), 0);
        assert_eq!(run(&mut w, &ctx("ap-guangzhou", T0 + 10_000), &req).unwrap(), first);
        // Another region or SecretId is another scope.
        let other = ctx("ap-hongkong", T0);
        let hk = RunInstancesRequest {
            placement: Some(Placement { zone: "ap-hongkong-2".into(), ..Placement::default() }),
            ..req.clone()
        };
        assert_ne!(run(&mut w, &other, &hk).unwrap(), first);
        // Same token, different parameters.
        let changed = RunInstancesRequest { instance_count: Some(3), ..req.clone() };
        let outcome = run(&mut w, &c, &changed);
        match mode {
            TokenMode::Lenient => assert_eq!(outcome.unwrap(), first),
            TokenMode::Strict => assert_eq!(outcome.unwrap_err().code, "InvalidParameter"),
        }
    }
}

#[test]
fn quota_counts_live_instances_per_region() {
    let mut w = world(TokenMode::Lenient);
    let c = ctx("ap-guangzhou", T0);
    run(&mut w, &c, &RunInstancesRequest { instance_count: Some(15), ..basic("ap-guangzhou-3") }).unwrap();
    let err = run(&mut w, &c, &RunInstancesRequest { instance_count: Some(6), ..basic("ap-guangzhou-4") })
        .unwrap_err();
    assert_eq!(err.code, "InstancesQuotaLimitExceeded");
    run(&mut w, &c, &RunInstancesRequest { instance_count: Some(5), ..basic("ap-guangzhou-4") }).unwrap();
    let other = ctx("ap-hongkong", T0);
    let mut hk = basic("ap-hongkong-1");
    hk.instance_count = Some(5);
    run(&mut w, &other, &hk).unwrap();
}

#[test]
fn names_and_host_names_follow_patterns() {
    let mut w = world(TokenMode::Lenient);
    let c = ctx("ap-guangzhou", T0);
    let req = RunInstancesRequest {
        instance_count: Some(3),
        instance_name: Some("web-{R:8,F:2}".into()),
        host_name: Some("web-{IP}".into()),
        ..basic("ap-guangzhou-3")
    };
    let ids = run(&mut w, &c, &req).unwrap();
    let names: Vec<(String, String)> = ids
        .iter()
        .map(|id| {
            let i = &w.record_by_id(id).unwrap().instance;
            (i.instance_name.clone(), i.host_name.clone())
        })
        .collect();
    assert_eq!(names[0].0, "web-08");
    assert_eq!(names[2].0, "web-10");
    let ip0 = &w.record_by_id(&ids[0]).unwrap().instance.private_ip_addresses[0];
    assert_eq!(names[0].1, format!("web-{ip0}"));
    let plain = RunInstancesRequest {
        instance_count: Some(2),
        instance_name: Some("server_".into()),
        ..basic("ap-guangzhou-3")
    };
    let ids = run(&mut w, &c, &plain).unwrap();
    assert_eq!(w.record_by_id(&ids[1]).unwrap().instance.instance_name, "server_2");
}

fn tagged(zone: &str, fleet: &str, count: i64) -> RunInstancesRequest {
    RunInstancesRequest {
        instance_count: Some(count),
        tag_specification: Some(vec![TagSpecification {
            resource_type: "instance".into(),
            tags: vec![Tag::new("cvmfleet:fleet", fleet), Tag::new("env", "prod")],
        }]),
        ..basic(zone)
    }
}

#[test]
fn describe_filters_and_pages() {
    let mut w = world(TokenMode::Lenient);
    let c = ctx("ap-guangzhou", T0);
    let web = run(&mut w, &c, &tagged("ap-guangzhou-3", "web", 5)).unwrap();
    run(&mut w, &c, &tagged("ap-guangzhou-4", "db", 3)).unwrap();
    fn describe(
        w: &World,
        filters: Vec<Filter>,
        offset: i64,
        limit: i64,
    ) -> Result<describe::InstancePage<'_>, ApiError> {
        let req = DescribeInstancesRequest {
            filters: Some(filters),
            offset: Some(offset),
            limit: Some(limit),
            ..DescribeInstancesRequest::default()
        };
        w.describe_instances("ap-guangzhou", &req)
    }
    let page = describe(&w, vec![Filter::new("tag:cvmfleet:fleet", ["web"])], 2, 2).unwrap();
    assert_eq!(page.total_count, 5);
    let got: Vec<&str> = page.instance_set.iter().map(|i| i.instance_id.as_str()).collect();
    assert_eq!(got, [web[2].as_str(), web[3].as_str()]);
    let all = describe(
        &w,
        vec![Filter::new("tag-key", ["cvmfleet:fleet"]), Filter::new("zone", ["ap-guangzhou-4"])],
        0,
        100,
    )
    .unwrap();
    assert_eq!(all.total_count, 3);
    assert_eq!(describe(&w, vec![Filter::new("tag-value", ["prod"])], 0, 100).unwrap().total_count, 8);
    assert_eq!(describe(&w, vec![Filter::new("tag:nope", ["x"])], 0, 100).unwrap().total_count, 0);
    assert_eq!(
        describe(&w, vec![Filter::new("instance-state", ["PENDING"])], 0, 100).unwrap().total_count,
        8
    );
    let ip = w.record_by_id(&web[0]).unwrap().instance.private_ip_addresses[0].clone();
    assert_eq!(describe(&w, vec![Filter::new("private-ip-address", [ip])], 0, 100).unwrap().total_count, 1);
    for (filters, code) in [
        (vec![Filter::new("colour", ["red"])], "InvalidFilter"),
        (vec![Filter::new("zone", ["a", "b", "c", "d", "e", "f"])], "InvalidFilterValue.LimitExceeded"),
        (vec![Filter::new("private-ip-address", ["10.0.0"])], "InvalidParameterValue.IPAddressMalformed"),
    ] {
        assert_eq!(describe(&w, filters, 0, 20).unwrap_err().code, code);
    }
    assert_eq!(describe(&w, vec![], 0, 101).unwrap_err().code, "InvalidParameterValue.Range");
    assert_eq!(describe(&w, vec![], -1, 20).unwrap_err().code, "InvalidParameterValueOffset");
    let both = DescribeInstancesRequest {
        instance_ids: Some(vec![web[0].clone()]),
        filters: Some(vec![Filter::new("zone", ["ap-guangzhou-3"])]),
        ..DescribeInstancesRequest::default()
    };
    assert_eq!(w.describe_instances("ap-guangzhou", &both).unwrap_err().code, "InvalidParameter");
    // Other regions see nothing of these.
    assert_eq!(
        w.describe_instances("ap-hongkong", &DescribeInstancesRequest::default()).unwrap().total_count,
        0
    );
}

#[test]
fn modify_changes_one_attribute() {
    let mut w = world(TokenMode::Lenient);
    let ids = run(&mut w, &ctx("ap-guangzhou", T0), &basic("ap-guangzhou-3")).unwrap();
    let c = ctx("ap-guangzhou", T0 + 5_000);
    let rename = ModifyInstancesAttributeRequest {
        instance_ids: ids.clone(),
        instance_name: Some("new".into()),
        ..ModifyInstancesAttributeRequest::default()
    };
    assert_eq!(w.modify(&c, &rename).unwrap_err().code, "UnsupportedOperation.InstanceStatePending");
    w.advance(T0 + 5_000);
    w.modify(&c, &rename).unwrap();
    assert_eq!(w.record_by_id(&ids[0]).unwrap().instance.instance_name, "new");
    let two = ModifyInstancesAttributeRequest { disable_api_termination: Some(true), ..rename.clone() };
    assert_eq!(w.modify(&c, &two).unwrap_err().code, "InvalidParameterCombination");
    let protect = ModifyInstancesAttributeRequest {
        instance_ids: ids.clone(),
        disable_api_termination: Some(true),
        ..ModifyInstancesAttributeRequest::default()
    };
    w.modify(&c, &protect).unwrap();
    let term =
        TerminateInstancesRequest { instance_ids: ids.clone(), ..TerminateInstancesRequest::default() };
    assert_eq!(w.terminate(&c, &term).unwrap_err().code, "UnsupportedOperation.InstancesProtected");
    let sg = ModifyInstancesAttributeRequest {
        instance_ids: ids.clone(),
        security_groups: Some(vec!["sg-7hk2a9bq".into()]),
        ..ModifyInstancesAttributeRequest::default()
    };
    assert_eq!(w.modify(&c, &sg).unwrap_err().code, "InvalidSecurityGroupId.NotFound");
}

#[test]
fn snapshot_round_trips_and_replays_the_same_ids() {
    let mut w = world(TokenMode::Lenient);
    let c = ctx("ap-guangzhou", T0);
    run(
        &mut w,
        &c,
        &RunInstancesRequest { client_token: Some("t".into()), ..tagged("ap-guangzhou-3", "web", 3) },
    )
    .unwrap();
    let snapshot = w.snapshot();
    let mut restored = World::from_snapshot(
        Arc::new(CatalogIndex::new(Catalog::builtin())),
        settings(TokenMode::Lenient),
        snapshot.clone(),
    );
    assert_eq!(restored.snapshot(), snapshot);
    // The next IDs continue the sequence, in both.
    let a = run(&mut w, &c, &basic("ap-guangzhou-3")).unwrap();
    let b = run(&mut restored, &c, &basic("ap-guangzhou-3")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn passwords_never_reach_the_state() {
    let mut w = world(TokenMode::Strict);
    let login = cvmfleet_wire::model::LoginSettings {
        password: Some("Cvmfleet@Test2026!".into()),
        ..Default::default()
    };
    let req = RunInstancesRequest {
        client_token: Some("p".into()),
        login_settings: Some(login),
        ..basic("ap-guangzhou-3")
    };
    let (_, mutation) =
        w.run_instances(&ctx("ap-guangzhou", T0), &req, &mut |_| LaunchFate::default()).unwrap();
    let journal = serde_json::to_string(&mutation).unwrap();
    let snapshot = serde_json::to_string(&w.snapshot()).unwrap();
    for text in [journal, snapshot] {
        assert!(!text.contains("Cvmfleet@Test2026!") && !text.contains("Password"), "{text}");
    }
}
