//! Name templates as api.json's `InstanceName`/`HostName` text defines them: `{R:x}`,
//! `{R:x,F:y}`, `{IP}` for host names, anything else in braces plain text, and the default
//! suffixes `1..n` without a pattern.

use cvmfleet_wire::names::{NameTemplate, check_host_name};

#[test]
fn ranges_count_from_their_start_and_pad_to_their_width() {
    let t = NameTemplate::parse("web-{R:8,F:2}", false);
    let names: Vec<String> = (0..3).map(|i| t.render(i, 3, "")).collect();
    assert_eq!(names, ["web-08", "web-09", "web-10"]);
    assert_eq!(t.longest(3, ""), "web-10");
    assert!(t.matches("web-09") && t.matches("web-100") && !t.matches("web-9") && !t.matches("web-07"));
}

#[test]
fn without_a_pattern_several_instances_get_suffixes_and_one_keeps_the_name() {
    let t = NameTemplate::parse("db", false);
    assert!(!t.has_pattern());
    assert_eq!(t.render(0, 1, ""), "db");
    assert_eq!((0..3).map(|i| t.render(i, 3, "")).collect::<Vec<_>>(), ["db1", "db2", "db3"]);
    assert!(t.matches("db") && t.matches("db12") && !t.matches("db0") && !t.matches("db-1"));
}

#[test]
fn invalid_patterns_are_plain_text_and_ip_is_for_host_names_only() {
    for raw in ["a{}", "a{R:}", "a{R:1,F:9}", "a{X:1}"] {
        let t = NameTemplate::parse(raw, false);
        assert!(!t.has_pattern(), "{raw}");
        assert_eq!(t.render(0, 1, ""), raw);
    }
    let host = NameTemplate::parse("h-{IP}", true);
    assert_eq!(host.render(0, 2, "10.0.0.7"), "h-10.0.0.7");
    assert!(!NameTemplate::parse("h-{IP}", false).has_pattern());
}

#[test]
fn host_names_follow_the_api_s_character_rules() {
    assert!(check_host_name("web-01", false).is_ok());
    assert!(check_host_name("a", false).is_err(), "too short");
    assert!(check_host_name("web_01", false).is_err(), "underscore");
}
