//! The flattened parameter form of GET requests and v1 signatures (`Filters.0.Name=zone`):
//! typed requests flatten and read back unchanged, and what a request does not have is refused.

use cvmfleet_wire::api::{DescribeInstancesRequest, RunInstancesRequest};
use cvmfleet_wire::flat::{FlatError, encode_query, flatten, from_pairs, percent_encode};
use cvmfleet_wire::model::{Filter, Placement};

fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
    raw.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn a_describe_request_flattens_with_zero_based_indices_and_reads_back() {
    let request = DescribeInstancesRequest {
        instance_ids: None,
        filters: Some(vec![
            Filter::new("zone", ["ap-guangzhou-3"]),
            Filter::new("tag:cvmfleet:fleet", ["web", "api"]),
        ]),
        offset: Some(0),
        limit: Some(100),
    };
    let flat = flatten(&request);
    assert_eq!(
        flat,
        pairs(&[
            ("Filters.0.Name", "zone"),
            ("Filters.0.Values.0", "ap-guangzhou-3"),
            ("Filters.1.Name", "tag:cvmfleet:fleet"),
            ("Filters.1.Values.0", "web"),
            ("Filters.1.Values.1", "api"),
            ("Offset", "0"),
            ("Limit", "100"),
        ])
    );
    assert_eq!(from_pairs::<DescribeInstancesRequest>(&flat).unwrap(), request);
}

#[test]
fn a_run_request_round_trips_numbers_and_nested_objects() {
    let request = RunInstancesRequest {
        image_id: Some("img-pmqg1cw7".into()),
        instance_type: Some("S5.MEDIUM2".into()),
        instance_count: Some(3),
        placement: Some(Placement { zone: "ap-guangzhou-3".into(), ..Placement::default() }),
        client_token: Some("t-1".into()),
        ..RunInstancesRequest::default()
    };
    let flat = flatten(&request);
    assert!(flat.contains(&("Placement.Zone".to_owned(), "ap-guangzhou-3".to_owned())), "{flat:?}");
    assert!(flat.contains(&("InstanceCount".to_owned(), "3".to_owned())), "{flat:?}");
    assert_eq!(from_pairs::<RunInstancesRequest>(&flat).unwrap(), request);
}

#[test]
fn unknown_and_repeated_parameters_are_refused_by_name() {
    let unknown = from_pairs::<DescribeInstancesRequest>(&pairs(&[("Bogus", "1")])).unwrap_err();
    assert_eq!(unknown, FlatError::Unknown("Bogus".into()));
    let twice =
        from_pairs::<DescribeInstancesRequest>(&pairs(&[("Limit", "1"), ("Limit", "2")])).unwrap_err();
    assert_eq!(twice, FlatError::Conflict("Limit".into()));
    let wrong = from_pairs::<DescribeInstancesRequest>(&pairs(&[("Limit", "many")])).unwrap_err();
    assert!(matches!(wrong, FlatError::Invalid(_)), "{wrong:?}");
}

#[test]
fn query_encoding_is_rfc3986_with_upper_case_hex() {
    assert_eq!(percent_encode("未命名 a+b~c"), "%E6%9C%AA%E5%91%BD%E5%90%8D%20a%2Bb~c");
    assert_eq!(encode_query(&pairs(&[("Filters.0.Name", "tag:a b")])), "Filters.0.Name=tag%3Aa%20b");
}
