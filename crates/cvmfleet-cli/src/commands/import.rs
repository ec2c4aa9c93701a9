//! `cvmfleet import`: prints a spec that brings existing instances under cvmfleet without
//! recreating them (issue 12 §4), as Terraform's `import` with `-generate-config-out` does.
//! One group per distinct launch template (per zone and subnet when the instances are not
//! spread the way a group spreads them), `replicas` and `adopt:` filled, secrets left as
//! references to fill in. Then `validate` → `plan` (only adoptions) → `apply` → `plan` says
//! `No changes.`

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::bail;
use clap::Args;

use cvmfleet_plan::observed::tags;
use cvmfleet_wire::model::{Filter, Instance};

use super::target::{TargetArgs, connect};
use crate::commands::exit::Exit;

/// Arguments of `cvmfleet import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Instances to import (`ins-…`); with `--tag`, only those of them that match.
    #[arg(value_name = "INSTANCE_ID")]
    ids: Vec<String>,
    /// Region of the instances, e.g. `ap-guangzhou`.
    #[arg(long, value_name = "REGION")]
    region: String,
    /// Select instances by tag instead of (or among) IDs: `KEY=VALUE`, repeatable, all must
    /// match.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// Name of the fleet the spec declares (a fleet name: lowercase letters, digits and `-`,
    /// starting with a letter, at most 32 characters).
    #[arg(long, value_name = "NAME", default_value = "imported", value_parser = super::target::parse_name)]
    fleet: String,
    #[command(flatten)]
    target: TargetArgs,
}

#[cfg(test)]
impl ImportArgs {
    /// What parsed arguments promise (for the argument fuzzer, `super::args_fuzz`): names obey
    /// the spec's rule, tag keys are not empty, and the spec printed for them validates as
    /// exactly this fleet and project, whatever the region says.
    pub(super) fn fuzz_check(&self) -> Result<(), String> {
        cvmfleet_spec::check_name(&self.fleet).map_err(|e| format!("--fleet {:?}: {e}", self.fleet))?;
        if let Some(project) = self.target.project() {
            cvmfleet_spec::check_name(project).map_err(|e| format!("--project {project:?}: {e}"))?;
        }
        if self.tags.iter().any(|(key, _)| key.is_empty()) {
            return Err("an empty tag key".into());
        }
        let mut instance = Instance { instance_id: "ins-aaaaaaa1".into(), ..Instance::default() };
        instance.placement.zone = "ap-guangzhou-3".into();
        instance.instance_type = "S5.MEDIUM2".into();
        instance.image_id = "img-pmqg1cw7".into();
        instance.instance_state = "RUNNING".into();
        if let Ok(imported) = generate(&self.region, &self.fleet, self.target.project(), &[instance]) {
            let specs = cvmfleet_spec::load_str("imported.yaml", &imported.spec)
                .map_err(|_| "import printed a spec that does not validate".to_owned())?;
            if specs.fleets[0].name != self.fleet || specs.project.as_deref() != self.target.project() {
                return Err("the printed spec names another fleet or project".into());
            }
        }
        Ok(())
    }
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

pub(crate) fn run(args: ImportArgs) -> anyhow::Result<Exit> {
    if args.ids.is_empty() && args.tags.is_empty() {
        bail!("name the instances to import: INSTANCE_ID… or --tag KEY=VALUE");
    }
    let instances = super::runtime()?.block_on(async {
        let target = connect(&args.target).await?;
        let listed = list(&target.client, &args).await;
        let closed = target.close().await;
        let listed = listed?;
        closed?;
        anyhow::Ok(listed)
    })?;
    let missing: Vec<&String> =
        args.ids.iter().filter(|id| !instances.iter().any(|i| i.instance_id == **id)).collect();
    if !missing.is_empty() && args.tags.is_empty() {
        bail!(
            "no such instance in {}: {}",
            args.region,
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let imported = match generate(&args.region, &args.fleet, args.target.project(), &instances) {
        Ok(imported) => imported,
        Err(refused) => {
            // Nothing is printed on stdout: a spec `validate` would reject is never shown.
            if let Refused::Invalid(diagnostics) = &refused {
                super::validate::print_diagnostics(diagnostics)?;
            }
            bail!("{refused}");
        }
    };
    print!("{}", imported.spec);
    for note in &imported.notes {
        anstream::eprintln!("note: {note}");
    }
    Ok(if imported.adopted == 0 { Exit::Failure } else { Exit::Success })
}

async fn list(client: &cvmfleet_client::CvmClient, args: &ImportArgs) -> anyhow::Result<Vec<Instance>> {
    let filters: Vec<Filter> = args.tags.iter().map(|(k, v)| Filter::tag(k, [v.clone()])).collect();
    let mut found = if args.ids.is_empty() {
        client.describe_instances_all(&args.region, filters).await?
    } else {
        let mut found = client.describe_instances_by_ids(&args.region, &args.ids).await?;
        found.retain(|i| args.tags.iter().all(|(k, v)| i.tag(k) == Some(v.as_str())));
        found
    };
    found.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    Ok(found)
}

/// A generated spec: its text, how many instances it adopts, and what was left out and why.
#[derive(Debug)]
pub(crate) struct Imported {
    pub(crate) spec: String,
    pub(crate) adopted: usize,
    pub(crate) notes: Vec<String>,
}

/// The launch settings that make instances one group: the template lines they share.
type Template = Vec<(String, String)>;

/// Where instances run: zone and subnet (empty outside a VPC).
type Placement = (String, String);

/// A group to write: its zones, in spread order, and the instances it adopts.
type Planned = (Vec<Placement>, Vec<String>);

/// Why `import` printed nothing.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The generated spec does not validate (what the cloud reported is not expressible in a
    /// spec, e.g. a value the schema refuses): printing it would hand the user a spec that
    /// `validate` rejects.
    Invalid(cvmfleet_spec::Diagnostics),
    /// The generated spec validates but reads back as something other than what was generated
    /// (a value from the cloud changed the document's structure).
    Altered(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Invalid(_) => {
                write!(f, "the spec generated from these instances does not validate; nothing was printed")
            }
            Refused::Altered(why) => write!(
                f,
                "the spec generated from these instances does not read back as generated ({why}); nothing was printed"
            ),
        }
    }
}

/// The spec adopting `instances` (those not already managed, not leaving) as fleet `fleet`.
///
/// The text is checked before it is returned, with the loader `validate` uses: it must validate
/// and read back as exactly the groups written (names, replicas, adopted IDs), so no value can
/// change the document's structure. A launch template with more instances in one placement
/// than a group may hold ([`cvmfleet_spec::MAX_REPLICAS`]) is split into groups of at most that
/// many, one zone each: every instance is still adopted, and each group is spread evenly.
pub(crate) fn generate(
    region: &str,
    fleet: &str,
    project: Option<&str>,
    instances: &[Instance],
) -> Result<Imported, Refused> {
    let mut notes = Vec::new();
    // Launch template → (zone, subnet) → instance IDs.
    let mut groups: BTreeMap<Template, BTreeMap<Placement, Vec<String>>> = BTreeMap::new();
    let mut names: BTreeMap<Template, Vec<String>> = BTreeMap::new();
    for instance in instances {
        if let Some(owner) = instance.tag(tags::FLEET) {
            notes.push(format!(
                "{} is already managed by cvmfleet (fleet {owner}); left out",
                instance.instance_id
            ));
            continue;
        }
        let state = instance.state();
        if state.is_leaving() || state.is_failed() {
            notes.push(format!("{} is {}; left out", instance.instance_id, instance.instance_state));
            continue;
        }
        let template = template_of(instance);
        let placement = (instance.placement.zone.clone(), instance.virtual_private_cloud.subnet_id.clone());
        groups
            .entry(template.clone())
            .or_default()
            .entry(placement)
            .or_default()
            .push(instance.instance_id.clone());
        names.entry(template).or_default().push(instance.instance_name.clone());
    }
    let mut out = String::new();
    let _ =
        writeln!(out, "# Generated by `cvmfleet import`: applying it adopts these instances (ownership tags");
    let _ =
        writeln!(out, "# written) and creates or terminates nothing. Review it, then validate, plan, apply.");
    if let Some(project) = project {
        let _ = writeln!(out, "project: {project}");
    }
    let _ = writeln!(out, "fleets:\n  - name: {fleet}\n    region: {region}\n    groups:");
    let mut adopted = 0;
    let mut index = 0;
    let mut written: Vec<(String, Vec<String>)> = Vec::new();
    for (template, placements) in &groups {
        let shared_name = names[template].first().filter(|n| names[template].iter().all(|m| m == *n));
        for (zones, ids) in within_limits(placements, split_for_even_spread(placements)) {
            index += 1;
            adopted += ids.len();
            written.push((format!("g{index}"), ids.clone()));
            let _ = writeln!(out, "      - name: g{index}");
            let _ = writeln!(out, "        replicas: {}", ids.len());
            let zones: Vec<String> = zones
                .iter()
                .map(|(zone, subnet)| {
                    if subnet.is_empty() {
                        zone.clone()
                    } else {
                        format!("{{zone: {zone}, SubnetId: {subnet}}}")
                    }
                })
                .collect();
            let _ = writeln!(out, "        zones: [{}]", zones.join(", "));
            let _ = writeln!(out, "        adopt: [{}]", ids.join(", "));
            let _ = writeln!(out, "        template:");
            for (key, value) in template {
                let _ = writeln!(out, "          {key}: {value}");
            }
            if let Some(name) = shared_name.filter(|n| !n.is_empty()) {
                let _ = writeln!(out, "          InstanceName: {}", quoted(name));
            }
            let _ = writeln!(
                out,
                "          # New instances get a login you choose; a spec holds only a reference:\n          \
                 # LoginSettings: {{Password: {{fromEnv: CVM_PASSWORD}}}}"
            );
        }
    }
    if adopted == 0 {
        // A fleet without groups is no spec: nothing is printed, the notes say why.
        notes.push("nothing to import".into());
        return Ok(Imported { spec: String::new(), adopted, notes });
    }
    check_reads_back(&out, fleet, &written)?;
    Ok(Imported { spec: out, adopted, notes })
}

/// Loads the generated text as `validate` would and compares it with what was written.
fn check_reads_back(text: &str, fleet: &str, written: &[(String, Vec<String>)]) -> Result<(), Refused> {
    let specs = cvmfleet_spec::load_str("imported.yaml", text).map_err(Refused::Invalid)?;
    let [loaded] = specs.fleets.as_slice() else {
        return Err(Refused::Altered(format!("{} fleets instead of one", specs.fleets.len())));
    };
    if loaded.name != fleet {
        return Err(Refused::Altered(format!("fleet {} instead of {fleet}", loaded.name)));
    }
    let read: Vec<(&str, u32, &[String])> =
        loaded.groups.iter().map(|g| (g.name.as_str(), g.replicas, g.adopt.as_slice())).collect();
    let meant: Vec<(&str, u32, &[String])> = written
        .iter()
        .map(|(name, ids)| (name.as_str(), u32::try_from(ids.len()).unwrap_or(u32::MAX), ids.as_slice()))
        .collect();
    if read != meant {
        return Err(Refused::Altered("the groups differ".into()));
    }
    Ok(())
}

/// Groups of at most [`cvmfleet_spec::MAX_REPLICAS`] instances: a group over the limit becomes
/// one group per placement, and a placement over it is cut into chunks of the limit (the
/// instances keep their zone; one-zone groups are spread evenly by construction).
fn within_limits(placements: &BTreeMap<Placement, Vec<String>>, planned: Vec<Planned>) -> Vec<Planned> {
    let max = cvmfleet_spec::MAX_REPLICAS as usize;
    let mut out = Vec::new();
    for (zones, ids) in planned {
        if ids.len() <= max {
            out.push((zones, ids));
            continue;
        }
        for zone in zones {
            for chunk in placements[&zone].chunks(max) {
                out.push((vec![zone.clone()], chunk.to_vec()));
            }
        }
    }
    out
}

/// The placements of one launch template as groups: one group when the instances are spread the
/// way a group spreads them (zones, listed by count, differ by at most one, each zone in one
/// subnet), else one group per zone and subnet.
fn split_for_even_spread(placements: &BTreeMap<Placement, Vec<String>>) -> Vec<Planned> {
    let mut ordered: Vec<(&Placement, &Vec<String>)> = placements.iter().collect();
    ordered.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(b.0)));
    let total: usize = ordered.iter().map(|(_, ids)| ids.len()).sum();
    let k = ordered.len();
    let even =
        ordered.iter().enumerate().all(|(i, (_, ids))| ids.len() == total / k + usize::from(i < total % k));
    let one_subnet_per_zone = {
        let mut zones: Vec<&str> = ordered.iter().map(|(p, _)| p.0.as_str()).collect();
        zones.sort_unstable();
        zones.windows(2).all(|w| w[0] != w[1])
    };
    if even && one_subnet_per_zone {
        let zones = ordered.iter().map(|(p, _)| (*p).clone()).collect();
        let mut ids: Vec<String> = ordered.iter().flat_map(|(_, ids)| ids.iter().cloned()).collect();
        ids.sort();
        vec![(zones, ids)]
    } else {
        placements.iter().map(|(p, ids)| (vec![p.clone()], ids.clone())).collect()
    }
}

/// The template lines an instance was launched with, as far as DescribeInstances tells.
fn template_of(i: &Instance) -> Template {
    let mut lines: Template = Vec::new();
    let mut push = |key: &str, value: String| lines.push((key.to_owned(), value));
    push("InstanceType", i.instance_type.clone());
    push("ImageId", i.image_id.clone());
    if !i.instance_charge_type.is_empty() && i.instance_charge_type != "POSTPAID_BY_HOUR" {
        push("InstanceChargeType", i.instance_charge_type.clone());
        if i.instance_charge_type == "PREPAID" {
            // The period is not observable; one month is the smallest. Renewal as observed.
            let renew = i.renew_flag.as_deref().map(|f| format!(", RenewFlag: {f}")).unwrap_or_default();
            push("InstanceChargePrepaid", format!("{{Period: 1{renew}}}"));
        }
    }
    let disk = &i.system_disk;
    if let (Some(kind), Some(size)) = (&disk.disk_type, disk.disk_size) {
        push("SystemDisk", format!("{{DiskType: {kind}, DiskSize: {size}}}"));
    }
    if !i.data_disks.is_empty() {
        let disks: Vec<String> = i
            .data_disks
            .iter()
            .map(|d| match &d.disk_type {
                Some(kind) => format!("{{DiskType: {kind}, DiskSize: {}}}", d.disk_size),
                None => format!("{{DiskSize: {}}}", d.disk_size),
            })
            .collect();
        push("DataDisks", format!("[{}]", disks.join(", ")));
    }
    if !i.virtual_private_cloud.vpc_id.is_empty() {
        push("VirtualPrivateCloud", format!("{{VpcId: {}}}", i.virtual_private_cloud.vpc_id));
    }
    let net = &i.internet_accessible;
    if net.internet_max_bandwidth_out.is_some_and(|b| b > 0) {
        let charge = net
            .internet_charge_type
            .as_deref()
            .map(|c| format!("InternetChargeType: {c}, "))
            .unwrap_or_default();
        push(
            "InternetAccessible",
            format!("{{{charge}InternetMaxBandwidthOut: {}}}", net.internet_max_bandwidth_out.unwrap_or(0)),
        );
    }
    if !i.security_group_ids.is_empty() {
        let mut groups = i.security_group_ids.clone();
        groups.sort();
        push("SecurityGroupIds", format!("[{}]", groups.join(", ")));
    }
    lines
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, zone: &str, instance_type: &str) -> Instance {
        let mut i =
            Instance { instance_id: id.into(), instance_type: instance_type.into(), ..Instance::default() };
        i.placement.zone = zone.into();
        i.image_id = "img-pmqg1cw7".into();
        i.instance_state = "RUNNING".into();
        i.instance_name = "legacy".into();
        i.security_group_ids = vec!["sg-5ld3mz1q".into()];
        i
    }

    #[test]
    fn one_group_per_launch_template_spread_like_a_group() {
        let mut managed = instance("ins-managed1", "ap-guangzhou-3", "S5.MEDIUM2");
        managed.tags = vec![cvmfleet_wire::model::Tag::new(tags::FLEET, "web")];
        let instances = [
            instance("ins-aaaaaaa1", "ap-guangzhou-3", "S5.MEDIUM2"),
            instance("ins-aaaaaaa2", "ap-guangzhou-4", "S5.MEDIUM2"),
            instance("ins-aaaaaaa3", "ap-guangzhou-3", "S5.MEDIUM2"),
            instance("ins-bbbbbbb1", "ap-guangzhou-3", "S5.SMALL1"),
            managed,
        ];
        let imported = generate("ap-guangzhou", "legacy", Some("shop"), &instances).expect("valid");
        assert_eq!(imported.adopted, 4);
        assert_eq!(imported.notes, ["ins-managed1 is already managed by cvmfleet (fleet web); left out"]);
        insta::assert_snapshot!(imported.spec);
        let specs =
            cvmfleet_spec::load_str("imported.yaml", &imported.spec).expect("the generated spec validates");
        assert_eq!(specs.project.as_deref(), Some("shop"));
        let adopt: Vec<usize> = specs.fleets[0].groups.iter().map(|g| g.adopt.len()).collect();
        assert_eq!(adopt, [3, 1]);
    }

    #[test]
    fn an_uneven_spread_becomes_a_group_per_zone() {
        let instances = [
            instance("ins-aaaaaaa1", "ap-guangzhou-3", "S5.MEDIUM2"),
            instance("ins-aaaaaaa2", "ap-guangzhou-3", "S5.MEDIUM2"),
            instance("ins-aaaaaaa3", "ap-guangzhou-3", "S5.MEDIUM2"),
            instance("ins-aaaaaaa4", "ap-guangzhou-4", "S5.MEDIUM2"),
        ];
        let imported = generate("ap-guangzhou", "legacy", None, &instances).expect("valid");
        let specs = cvmfleet_spec::load_str("imported.yaml", &imported.spec).expect("valid");
        let replicas: Vec<u32> = specs.fleets[0].groups.iter().map(|g| g.replicas).collect();
        assert_eq!(replicas, [3, 1]);
    }

    /// Issue 25 item 2: more instances of one launch template than a group holds are split into
    /// groups that validate, each in one zone, and every instance is adopted exactly once.
    #[test]
    fn issue_25_more_than_a_group_holds_is_split_into_groups_that_validate() {
        let mut instances = Vec::new();
        for n in 0..2_001 {
            let zone = if n % 2 == 0 { "ap-guangzhou-3" } else { "ap-guangzhou-4" };
            instances.push(instance(&format!("ins-{n:08}"), zone, "S5.MEDIUM2"));
        }
        for n in 0..2_500 {
            instances.push(instance(&format!("ins-b{n:07}"), "ap-guangzhou-3", "S5.SMALL1"));
        }
        let imported = generate("ap-guangzhou", "legacy", None, &instances).expect("valid");
        assert_eq!(imported.adopted, 4_501);
        let specs = cvmfleet_spec::load_str("imported.yaml", &imported.spec).expect("valid");
        let groups = &specs.fleets[0].groups;
        let sizes: Vec<(u32, usize)> = groups.iter().map(|g| (g.replicas, g.placements.len())).collect();
        assert_eq!(sizes, [(1_000, 1), (1, 1), (1_000, 1), (1_000, 1), (1_000, 1), (500, 1)]);
        let mut adopted: Vec<&String> = groups.iter().flat_map(|g| &g.adopt).collect();
        adopted.sort();
        adopted.dedup();
        assert_eq!(adopted.len(), 4_501);
    }

    /// Issue 25 item 2: a value from the cloud that would change the printed document (a line
    /// break and a key) is refused, not printed.
    #[test]
    fn issue_25_a_value_that_would_change_the_document_is_refused() {
        for hostile in ["S5.MEDIUM2\nfleets: []", "S5.MEDIUM2\n          ImageId: img-00000000", "a: b"] {
            let instances = [instance("ins-aaaaaaa1", "ap-guangzhou-3", hostile)];
            let refused = generate("ap-guangzhou", "legacy", None, &instances).expect_err(hostile);
            assert!(refused.to_string().contains("nothing was printed"), "{refused}");
        }
        let mut zoned = instance("ins-aaaaaaa1", "ap-guangzhou-3", "S5.MEDIUM2");
        zoned.placement.zone = "ap-guangzhou-3]\n    groups: [".into();
        assert!(generate("ap-guangzhou", "legacy", None, &[zoned]).is_err());
    }
}
