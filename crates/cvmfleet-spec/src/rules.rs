//! Semantic rules on a group's merged launch template: the constraints the RunInstances
//! documentation states in prose (charge types, dedicated hosts, disks, bandwidth, host names,
//! login settings, tags), each with a stable `semantic.*` code.
//!
//! The rules themselves (limits, disk classes, name patterns, host-name syntax) are the wire
//! crate's (`cvmfleet_wire::vocab`, `cvmfleet_wire::names`), which the emulator applies too;
//! this module only places their verdicts in the spec file.

use std::collections::BTreeMap;

use cvmfleet_wire::names::{self, InstanceTypeShape, NameTemplate};
use cvmfleet_wire::vocab::{
    self, DATA_DISK_DEFAULT_TYPE, DiskCountProblem, DiskSizeProblem, INSTANCE_NAME_DEFAULT,
    INSTANCE_NAME_MAX_BYTES, UserDataProblem,
};

use crate::diagnostic::Diagnostic;
use crate::schema::span_of;
use crate::source::{Source, Span};
use crate::template::{InstanceChargeType, InternetChargeType, Template};
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
    matches!(names::instance_type_shape(instance_type), Some(InstanceTypeShape::Cdh { .. }))
}

/// The longest private IP `{IP}` can stand for, so that a host name valid here is valid for
/// every address.
const LONGEST_IP: &str = "255.255.255.255";

/// Checks the names a group's RunInstances calls produce, for calls of 1 and of `largest`
/// instances (the planner sends calls of any count up to the zone's share, at most
/// `vocab::INSTANCE_COUNT_MAX`): every InstanceName at most 60 bytes, every HostName valid by
/// the Linux rules (the spec does not know whether an image is Windows).
pub(crate) fn check_names(at: &Locator<'_>, t: &Template, largest: u32, out: &mut Vec<Diagnostic>) {
    let largest = u64::from(largest.clamp(1, vocab::INSTANCE_COUNT_MAX));
    let raw = t.instance_name.as_deref().unwrap_or(INSTANCE_NAME_DEFAULT);
    let longest = NameTemplate::parse(raw, false).longest(largest, "");
    if longest.len() > INSTANCE_NAME_MAX_BYTES {
        let i = at.push(
            out,
            "/InstanceName",
            "semantic.instance-name-length",
            format!(
                "InstanceName `{raw}` gives names like `{longest}` of {} bytes; expected at most {INSTANCE_NAME_MAX_BYTES} bytes",
                longest.len()
            ),
        );
        out[i].help = Some(format!(
            "a CJK character takes 3 bytes; the longest name is the last of a call creating {largest} instances"
        ));
    }
    if let Some(raw) = &t.host_name {
        let template = NameTemplate::parse(raw, true);
        let samples = [
            template.render(0, 1, LONGEST_IP),
            template.render(0, largest, LONGEST_IP),
            template.longest(largest, LONGEST_IP),
        ];
        if let Some((name, why)) =
            samples.iter().find_map(|name| names::check_host_name(name, false).err().map(|why| (name, why)))
        {
            let message = if name == raw {
                format!("host name `{raw}` is not valid: it {why}")
            } else {
                format!("host name `{raw}` is not valid: it gives `{name}`, which {why}")
            };
            at.push(out, "/HostName", "semantic.host-name", message);
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
        && let Err(problem) = vocab::check_user_data(data)
    {
        let message = match problem {
            UserDataProblem::NotBase64 => format!(
                "UserData ({} characters) is not valid base64 (padded, a multiple of 4 long); expected base64-encoded text",
                data.len()
            ),
            UserDataProblem::TooLarge(n) => format!(
                "UserData decodes to {n} bytes; expected at most {} (16 KiB)",
                vocab::USER_DATA_MAX_BYTES
            ),
        };
        at.push(out, "/UserData", "semantic.user-data", message);
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
    let types: Vec<vocab::DiskType> =
        disks.iter().map(|d| d.disk_type.map_or(DATA_DISK_DEFAULT_TYPE, |t| t.wire())).collect();
    match vocab::data_disk_count_problem(&types) {
        // More than 21 disks in all is the schema's `maxItems`.
        None | Some(DiskCountProblem::TooMany(_)) => {}
        Some(DiskCountProblem::TooManyLocal(local)) => {
            at.push(
                out,
                "/DataDisks",
                "semantic.data-disk-local-count",
                format!(
                    "{local} local data disks (LOCAL_BASIC/LOCAL_SSD, the default type) are listed; at most {} is allowed",
                    vocab::MAX_LOCAL_DATA_DISKS
                ),
            );
        }
        Some(DiskCountProblem::TooManyCloud(cloud)) => {
            at.push(
                out,
                "/DataDisks",
                "semantic.data-disk-cloud-count",
                format!(
                    "{cloud} cloud data disks are listed; at most {} are allowed",
                    vocab::MAX_CLOUD_DATA_DISKS
                ),
            );
        }
    }
    for (i, (disk, kind)) in disks.iter().zip(&types).enumerate() {
        // The general range and the 10 GiB step are the schema's (`minimum`, `maximum`,
        // `multipleOf`); only a type's larger minimum is left to this rule.
        let size = disk.disk_size;
        let schema_reports = !(vocab::DATA_DISK_SIZE_MIN..=vocab::DATA_DISK_SIZE_MAX).contains(&size)
            || size % vocab::DATA_DISK_SIZE_STEP != 0;
        if schema_reports {
            continue;
        }
        if let Some(DiskSizeProblem::TooSmall(min)) = vocab::data_disk_size_problem(*kind, i64::from(size)) {
            at.push(
                out,
                &format!("/DataDisks/{i}/DiskSize"),
                "semantic.data-disk-size",
                format!(
                    "a {kind} data disk of {} GiB is too small; expected at least {min} GiB",
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
    if vocab::is_reserved_tag_key(key) {
        at.push(
            out,
            field,
            "semantic.reserved-tag",
            format!(
                "tag key `{key}` starts with a prefix the cloud reserves for its own tags ({})",
                vocab::RESERVED_TAG_KEY_PREFIXES.join(", ")
            ),
        );
    }
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
    fn cdh_shape_is_the_wire_crate_s() {
        assert!(!is_cdh_type("CDH_0C1G"));
    }

    /// Issue 10, item 18: the API numbers names within a call, so the longest name of a group is
    /// longer than its template (one implementation, `cvmfleet_wire::names`).
    #[test]
    fn issue_10_longest_generated_names() {
        let longest = |t: &str, count: u64, ip: bool| NameTemplate::parse(t, ip).longest(count, LONGEST_IP);
        assert_eq!(longest("web", 1, true), "web");
        assert_eq!(longest("web", 2, true), "web2");
        assert_eq!(longest("web", 100, true), "web100");
        assert_eq!(longest("web-{R:7}", 5, true), "web-11");
        assert_eq!(longest("web-{R:1,F:3}", 5, true), "web-005");
        assert_eq!(longest("n-{IP}", 3, true), "n-255.255.255.255");
    }
}
