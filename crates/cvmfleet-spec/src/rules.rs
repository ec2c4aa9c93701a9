//! Semantic rules on a group's merged launch template: the constraints the RunInstances
//! documentation states in prose (charge types, dedicated hosts, disks, bandwidth, host names,
//! login settings, tags), each with a stable `semantic.*` code.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::schema::span_of;
use crate::source::{Source, Span};
use crate::template::{DataDiskType, InstanceChargeType, InternetChargeType, Template};
use crate::yaml::Document;

/// Tag keys reserved for the reconciler's own bookkeeping tags.
pub const RESERVED_TAG_PREFIX: &str = "cvmfleet:";

/// Finds where a template field was written: in the group's template, else in the fleet's
/// defaults, else at the group's template (or the group itself).
pub(crate) struct Locator<'a> {
    pub(crate) source: &'a Source,
    pub(crate) doc: &'a Document,
    pub(crate) fleet_ptr: &'a str,
    pub(crate) group_ptr: &'a str,
}

impl Locator<'_> {
    /// Pointer and span of a template field, e.g. `/InstanceChargePrepaid/Period`.
    pub(crate) fn locate(&self, field: &str) -> (String, Span) {
        let in_group = format!("{}/template{field}", self.group_ptr);
        if self.doc.index.contains_key(&in_group) {
            // The template as a whole is shown by its key; a field by its value.
            return (in_group.clone(), span_of(self.doc, &in_group, field.is_empty()));
        }
        let in_defaults = format!("{}/defaults{field}", self.fleet_ptr);
        if self.doc.index.contains_key(&in_defaults) {
            return (in_defaults.clone(), span_of(self.doc, &in_defaults, false));
        }
        let template = format!("{}/template", self.group_ptr);
        if self.doc.index.contains_key(&template) {
            return (template.clone(), span_of(self.doc, &template, true));
        }
        let name = format!("{}/name", self.group_ptr);
        (name.clone(), span_of(self.doc, &name, false))
    }

    fn push(&self, out: &mut Vec<Diagnostic>, field: &str, code: &str, message: String) -> usize {
        let (ptr, span) = self.locate(field);
        out.push(Diagnostic::new(self.source, span, &ptr, code, message));
        out.len() - 1
    }
}

/// True for `CDH_<n>C<m>G`.
fn is_cdh_type(instance_type: &str) -> bool {
    let Some(rest) = instance_type.strip_prefix("CDH_") else {
        return false;
    };
    let Some((cpu, mem)) = rest.split_once('C') else {
        return false;
    };
    let Some(mem) = mem.strip_suffix('G') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(cpu) && digits(mem)
}

/// Replaces the API's name patterns (`{R:x}`, `{R:x,F:y}`, `{IP}`) by sample text so that the
/// character rules can be checked on what the API will produce.
fn expand_patterns(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find('}').map(|e| e + 1);
        let token = end.map(|e| &tail[..e]);
        match token {
            Some("{IP}") => out.push_str("10-0-0-1"),
            Some(t) if is_range_pattern(t) => out.push('1'),
            _ => {
                out.push('{');
                rest = &tail[1..];
                continue;
            }
        }
        rest = &tail[end.unwrap_or(tail.len())..];
    }
    out.push_str(rest);
    out
}

/// True for `{R:x}` and `{R:x,F:y}` with y in 0..=8.
fn is_range_pattern(token: &str) -> bool {
    let Some(inner) = token.strip_prefix("{R:").and_then(|t| t.strip_suffix('}')) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match inner.split_once(",F:") {
        Some((x, y)) => digits(x) && digits(y) && y.parse::<u8>().is_ok_and(|y| y <= 8),
        None => digits(inner),
    }
}

/// Checks the HostName rules of RunInstances for Linux and other non-Windows images: `.` and `-`
/// are not first, last or doubled; segments between dots are letters, digits and `-`. (Length is
/// checked by the schema: 2-60, per the current API model; the older RunInstances page says 30.)
pub(crate) fn host_name_problem(name: &str) -> Option<String> {
    let expanded = expand_patterns(name);
    let first = expanded.chars().next();
    let last = expanded.chars().last();
    if matches!(first, Some('.' | '-')) || matches!(last, Some('.' | '-')) {
        return Some("`.` and `-` may not start or end a host name".to_owned());
    }
    let bytes: Vec<char> = expanded.chars().collect();
    if bytes.windows(2).any(|w| matches!(w[0], '.' | '-') && matches!(w[1], '.' | '-')) {
        return Some("`.` and `-` may not be used twice in a row".to_owned());
    }
    if let Some(bad) = expanded.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.')) {
        return Some(format!("`{bad}` is not allowed; use letters, digits, `-` and `.`"));
    }
    None
}

/// Longest instance name the API accepts, in bytes, not characters: 30 × `名` (90 bytes) is
/// refused with `InvalidInstanceName.TooLong` (RunInstances reference; issue 10).
const MAX_INSTANCE_NAME_BYTES: usize = 60;
/// Longest host name of a non-Windows instance, in characters (the schema's limit on the raw
/// value, which the API applies to each generated name).
const MAX_HOST_NAME_CHARS: usize = 60;
/// Most instances one RunInstances call creates (`InstanceCount` 1-100): the API numbers names
/// within a call.
const MAX_INSTANCES_PER_CALL: u64 = 100;
/// The longest text `{IP}` becomes in a host name (`255.255.255.255`).
const LONGEST_IP: &str = "255.255.255.255";

/// The longest name the API makes of `template` for a call creating `count` instances: each
/// `{R:x}` / `{R:x,F:y}` becomes x + count - 1 (at least y digits), `{IP}` (host names only) the
/// longest address, and a name without a pattern gets `1`..`count` appended when count > 1.
fn longest_generated_name(template: &str, count: u64, allow_ip: bool) -> String {
    let count = count.max(1);
    let mut out = String::new();
    let mut rest = template;
    let mut patterned = false;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find('}').map(|e| e + 1);
        let token = end.map(|e| &tail[..e]);
        match token {
            Some("{IP}") if allow_ip => out.push_str(LONGEST_IP),
            Some(t) if is_range_pattern(t) => {
                let inner = &t[3..t.len() - 1];
                let (first, width) = inner.split_once(",F:").unwrap_or((inner, "0"));
                let last = first.parse::<u64>().unwrap_or(u64::MAX).saturating_add(count - 1);
                let width = width.parse::<usize>().unwrap_or(0);
                out.push_str(&format!("{last:0width$}"));
            }
            _ => {
                out.push('{');
                rest = &tail[1..];
                continue;
            }
        }
        patterned = true;
        rest = &tail[end.unwrap_or(tail.len())..];
    }
    out.push_str(rest);
    if count > 1 && !patterned {
        out.push_str(&count.to_string());
    }
    out
}

/// Checks the names the API will generate for a group whose largest zone has `largest_zone`
/// instances (one call creates at most [`MAX_INSTANCES_PER_CALL`] of them): `InstanceName` in
/// bytes, `HostName` in characters, each on its longest generated value.
pub(crate) fn check_generated_names(
    at: &Locator<'_>,
    t: &Template,
    largest_zone: u32,
    out: &mut Vec<Diagnostic>,
) {
    let count = u64::from(largest_zone).clamp(1, MAX_INSTANCES_PER_CALL);
    let per_call =
        if count > 1 { format!(" when one call creates {count} instances") } else { String::new() };
    if let Some(name) = &t.instance_name {
        let longest = longest_generated_name(name, count, false);
        if longest.len() > MAX_INSTANCE_NAME_BYTES {
            at.push(
                out,
                "/InstanceName",
                "semantic.instance-name-too-long",
                format!(
                    "InstanceName makes names of {} bytes (`{}`){per_call}; the API allows at most {MAX_INSTANCE_NAME_BYTES} bytes (a CJK character is 3)",
                    longest.len(),
                    crate::schema::show_text(&longest)
                ),
            );
        }
    }
    if let Some(name) = &t.host_name {
        let longest = longest_generated_name(name, count, true);
        let chars = longest.chars().count();
        if chars > MAX_HOST_NAME_CHARS {
            at.push(
                out,
                "/HostName",
                "semantic.host-name-too-long",
                format!(
                    "HostName makes host names of {chars} characters (`{}`){per_call}; at most {MAX_HOST_NAME_CHARS} are allowed",
                    crate::schema::show_text(&longest)
                ),
            );
        }
    }
}

/// Checks a merged template; the problems are appended to `out`.
pub(crate) fn check_template(at: &Locator<'_>, group: &str, t: &Template, out: &mut Vec<Diagnostic>) {
    if t.image_id.is_none() {
        at.push(
            out,
            "",
            "semantic.missing-image-id",
            format!("group `{group}` has no ImageId; set `ImageId: img-...` in its template or in the fleet's defaults"),
        );
    }
    check_charge(at, t, out);
    check_disks(at, t, out);
    check_network(at, t, out);
    if let Some(name) = &t.host_name
        && let Some(problem) = host_name_problem(name)
    {
        at.push(
            out,
            "/HostName",
            "semantic.host-name",
            format!("host name `{name}` is not valid: {problem}"),
        );
    }
    if let Some(login) = &t.login_settings {
        let mut set = Vec::new();
        if login.password.is_some() {
            set.push("Password");
        }
        if login.key_ids.is_some() {
            set.push("KeyIds");
        }
        if login.keep_image_login.is_some_and(|k| k.0) {
            set.push("KeepImageLogin");
        }
        if set.len() > 1 {
            at.push(
                out,
                "/LoginSettings",
                "semantic.login-exclusive",
                format!(
                    "LoginSettings sets {}; expected at most one of Password, KeyIds and KeepImageLogin",
                    set.join(" and ")
                ),
            );
        }
    }
    check_tags(at, t, out);
    if let Some(data) = &t.user_data
        && data.len() % 4 != 0
    {
        at.push(
                out,
                "/UserData",
                "semantic.user-data",
                format!("UserData is {} characters long, which is not valid base64 (a multiple of 4); expected base64-encoded text", data.len()),
            );
    }
}

fn check_charge(at: &Locator<'_>, t: &Template, out: &mut Vec<Diagnostic>) {
    let charge = t.instance_charge_type.unwrap_or(InstanceChargeType::PostpaidByHour);
    match (charge, &t.instance_charge_prepaid) {
        (InstanceChargeType::Prepaid, None) => {
            let i = at.push(
                out,
                "/InstanceChargeType",
                "semantic.prepaid-needs-period",
                "InstanceChargeType is PREPAID but InstanceChargePrepaid is missing; expected the subscription period".to_owned(),
            );
            out[i].help = Some("add `InstanceChargePrepaid: {Period: 1, RenewFlag: NOTIFY_AND_AUTO_RENEW}` (Period in months: 1-12, 24 or 36)".to_owned());
        }
        (InstanceChargeType::Prepaid, Some(_)) | (_, None) => {}
        (other, Some(_)) => {
            at.push(
                out,
                "/InstanceChargePrepaid",
                "semantic.prepaid-settings-unused",
                format!(
                    "InstanceChargePrepaid only applies to PREPAID instances, but InstanceChargeType is {}",
                    other.as_str()
                ),
            );
        }
    }
    let host_ids = t.placement.as_ref().and_then(|p| p.host_ids.as_ref());
    let cdh_type = t.instance_type.as_deref().filter(|it| is_cdh_type(it));
    if charge == InstanceChargeType::Cdhpaid {
        if host_ids.is_none() {
            at.push(
                out,
                "/InstanceChargeType",
                "semantic.cdh-needs-host-ids",
                "InstanceChargeType is CDHPAID but Placement.HostIds is missing; expected the dedicated hosts, e.g. `HostIds: [host-q88gab4i]`".to_owned(),
            );
        }
        if cdh_type.is_none() {
            let found = t.instance_type.as_deref().map_or_else(|| "none".to_owned(), |it| format!("`{it}`"));
            at.push(
                out,
                "/InstanceType",
                "semantic.cdh-instance-type",
                format!("CDHPAID instances need an InstanceType `CDH_<cpu>C<memory>G` (e.g. `CDH_1C1G`), found {found}"),
            );
        }
    } else {
        if host_ids.is_some() {
            at.push(
                out,
                "/Placement/HostIds",
                "semantic.host-ids-need-cdhpaid",
                format!("Placement.HostIds places instances on dedicated hosts, which needs InstanceChargeType CDHPAID, found {}", charge.as_str()),
            );
        }
        if let Some(it) = cdh_type {
            at.push(
                out,
                "/InstanceType",
                "semantic.cdh-type-needs-cdhpaid",
                format!("InstanceType `{it}` is a dedicated-host type, which needs InstanceChargeType CDHPAID, found {}", charge.as_str()),
            );
        }
    }
}

fn check_disks(at: &Locator<'_>, t: &Template, out: &mut Vec<Diagnostic>) {
    let Some(disks) = &t.data_disks else {
        return;
    };
    let types: Vec<DataDiskType> =
        disks.iter().map(|d| d.disk_type.unwrap_or(DataDiskType::LocalBasic)).collect();
    let local = types.iter().filter(|t| t.is_local()).count();
    let cloud = types.len() - local;
    if local > 1 {
        at.push(
            out,
            "/DataDisks",
            "semantic.data-disk-local-count",
            format!("{local} local data disks (LOCAL_BASIC/LOCAL_SSD, the default type) are listed; at most 1 is allowed"),
        );
    }
    if cloud > 20 {
        at.push(
            out,
            "/DataDisks",
            "semantic.data-disk-cloud-count",
            format!("{cloud} cloud data disks are listed; at most 20 are allowed"),
        );
    }
    for (i, (disk, kind)) in disks.iter().zip(&types).enumerate() {
        let ssd_class = matches!(
            kind,
            DataDiskType::CloudSsd
                | DataDiskType::CloudHssd
                | DataDiskType::CloudTssd
                | DataDiskType::CloudBssd
        );
        if ssd_class && disk.disk_size < 20 {
            at.push(
                out,
                &format!("/DataDisks/{i}/DiskSize"),
                "semantic.data-disk-size",
                format!(
                    "a {} data disk of {} GiB is too small; expected at least 20 GiB",
                    kind.as_str(),
                    disk.disk_size
                ),
            );
        }
    }
}

fn check_network(at: &Locator<'_>, t: &Template, out: &mut Vec<Diagnostic>) {
    let Some(net) = &t.internet_accessible else {
        return;
    };
    let bandwidth = net.internet_max_bandwidth_out.unwrap_or(0);
    if net.public_ip_assigned == Some(true) && bandwidth == 0 {
        at.push(
            out,
            "/InternetAccessible/PublicIpAssigned",
            "semantic.public-ip-needs-bandwidth",
            "PublicIpAssigned is true but InternetMaxBandwidthOut is 0; a public IP needs bandwidth above 0 Mbps".to_owned(),
        );
    }
    let package = net.internet_charge_type == Some(InternetChargeType::BandwidthPackage);
    match (package, &net.bandwidth_package_id) {
        (true, None) => {
            at.push(
                out,
                "/InternetAccessible/InternetChargeType",
                "semantic.bandwidth-package-id",
                "InternetChargeType BANDWIDTH_PACKAGE needs BandwidthPackageId; expected an ID like `bwp-0a1b2c3d`".to_owned(),
            );
        }
        (false, Some(id)) => {
            at.push(
                out,
                "/InternetAccessible/BandwidthPackageId",
                "semantic.bandwidth-package-id",
                format!("BandwidthPackageId `{id}` is only used with InternetChargeType BANDWIDTH_PACKAGE"),
            );
        }
        _ => {}
    }
}

fn check_tags(at: &Locator<'_>, t: &Template, out: &mut Vec<Diagnostic>) {
    // Instance tags from both spellings, to find duplicates and reserved keys.
    let mut seen: BTreeMap<(&str, &str), String> = BTreeMap::new();
    for (s, spec) in t.tag_specification.iter().flatten().enumerate() {
        for (i, tag) in spec.tags.iter().enumerate() {
            let field = format!("/TagSpecification/{s}/Tags/{i}/Key");
            check_tag_key(at, &tag.key, &field, out);
            if let Some(first) = seen.insert((spec.resource_type.as_str(), tag.key.as_str()), field.clone()) {
                duplicate_tag(at, &tag.key, &field, &first, out);
            }
        }
    }
    for key in t.tags.iter().flat_map(BTreeMap::keys) {
        let field = format!("/Tags/{}", key.replace('~', "~0").replace('/', "~1"));
        check_tag_key(at, key, &field, out);
        if let Some(first) = seen.insert(("instance", key.as_str()), field.clone()) {
            duplicate_tag(at, key, &field, &first, out);
        }
    }
}

fn check_tag_key(at: &Locator<'_>, key: &str, field: &str, out: &mut Vec<Diagnostic>) {
    if key.starts_with(RESERVED_TAG_PREFIX) {
        at.push(
            out,
            field,
            "semantic.reserved-tag",
            format!("tag key `{key}` starts with `{RESERVED_TAG_PREFIX}`, which is reserved for the reconciler's own tags"),
        );
    }
}

fn duplicate_tag(at: &Locator<'_>, key: &str, field: &str, first: &str, out: &mut Vec<Diagnostic>) {
    let (_, first_span) = at.locate(first);
    let i = at.push(
        out,
        field,
        "semantic.duplicate-tag",
        format!("tag `{key}` is set twice for the same resource type"),
    );
    let d = out[i].clone().with_related(at.source, first_span, "first set here");
    out[i] = d;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdh_types() {
        assert!(is_cdh_type("CDH_1C1G"));
        assert!(is_cdh_type("CDH_16C64G"));
        assert!(!is_cdh_type("CDH_1C1"));
        assert!(!is_cdh_type("S1.SMALL1"));
        assert!(!is_cdh_type("CDH_C1G"));
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name_problem("web-1.example"), None);
        assert_eq!(host_name_problem("web-{R:1}"), None);
        assert_eq!(host_name_problem("node-{IP}"), None);
        assert_eq!(host_name_problem("web-{R:3,F:3}.prod"), None);
        assert!(host_name_problem("-web").is_some());
        assert!(host_name_problem("web.").is_some());
        assert!(host_name_problem("web..a").is_some());
        assert!(host_name_problem("web-.a").is_some());
        assert!(host_name_problem("web_1").is_some());
        assert!(host_name_problem("web{R:1,F:9}").is_some());
    }

    /// Issue 10, item 18: the API numbers names within a call, so the longest name of a group is
    /// longer than its template.
    #[test]
    fn issue_10_longest_generated_names() {
        assert_eq!(longest_generated_name("web", 1, true), "web");
        assert_eq!(longest_generated_name("web", 2, true), "web2");
        assert_eq!(longest_generated_name("web", 100, true), "web100");
        assert_eq!(longest_generated_name("web-{R:7}", 5, true), "web-11");
        assert_eq!(longest_generated_name("web-{R:1,F:3}", 5, true), "web-005");
        assert_eq!(longest_generated_name("n-{IP}", 3, true), "n-255.255.255.255");
        assert_eq!(longest_generated_name("n-{IP}", 3, false), "n-{IP}3");
    }
}
