//! RunInstances: the emulator's `world/run.rs` reduced to what the simulation needs: the
//! ClientToken check first (replay, or refusal under [`TokenMode::Strict`]), then zone, image,
//! count, `MinCount` and the spot options and bid, names, tags, VPC and private IPs, stock,
//! `DryRun`, and creation.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use cvmfleet_wire::api::{RunInstancesRequest, RunInstancesResponse};
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{Instance, LoginSettings, Placement, Tag, VirtualPrivateCloud};
use cvmfleet_wire::{MAX_BATCH, MAX_CLIENT_TOKEN_LEN};

use super::{ApiError, Record, Step, TokenRecord, World, check_name, state};
use crate::{CreatedInstance, TokenMode};

/// Name an instance gets when none is given ("unnamed"), as the emulator.
const DEFAULT_NAME: &str = "未命名";
/// `CreatedTime` counts from 2026-01-01T00:00:00Z, in Unix seconds.
const BASE_UNIX_SECS: u64 = 1_767_225_600;
/// Automatic private IPs come from 172.16.0.0/12, so they never collide with the explicit
/// 10.0.0.0/8 addresses tests and examples ask for (the sim has no subnet CIDRs).
const AUTO_IP_BASE: u32 = 0xAC10_0000;

impl World {
    pub(super) fn run_instances(
        &mut self,
        region: &str,
        req: &RunInstancesRequest,
        request_id: &str,
    ) -> Result<RunInstancesResponse, ApiError> {
        let token = req.client_token.as_deref().filter(|t| !t.is_empty());
        if let Some(token) = token {
            if token.len() > MAX_CLIENT_TOKEN_LEN {
                return Err(ApiError::new(
                    codes::INVALID_CLIENT_TOKEN_TOO_LONG,
                    format!(
                        "The ClientToken is {} bytes long; it must be at most {MAX_CLIENT_TOKEN_LEN}.",
                        token.len()
                    ),
                ));
            }
            if !token.is_ascii() {
                return Err(ApiError::new(
                    codes::INVALID_PARAMETER_VALUE,
                    "The ClientToken must consist of ASCII characters.",
                ));
            }
        }
        let dry_run = req.dry_run.unwrap_or(false);
        if let (Some(token), false) = (token, dry_run)
            && let Some(previous) = self.tokens.get(&(region.to_owned(), token.to_owned()))
        {
            if self.config.token_mode == TokenMode::Strict && previous.fingerprint != fingerprint(req) {
                return Err(ApiError::new(
                    codes::INVALID_PARAMETER,
                    format!(
                        "The ClientToken `{token}` was already used with different parameters (instances {}); \
                         use a new ClientToken for a different request.",
                        previous.instance_ids.join(", ")
                    ),
                ));
            }
            return Ok(RunInstancesResponse { instance_id_set: previous.instance_ids.clone() });
        }

        let placement = req.placement.clone().unwrap_or_default();
        let zone = placement.zone.as_str();
        if zone.is_empty() {
            return Err(ApiError::missing("Placement.Zone"));
        }
        if !zone.strip_prefix(region).is_some_and(|rest| rest.starts_with('-')) {
            return Err(ApiError::new(
                codes::INVALID_ZONE_MISMATCH_REGION,
                format!("The zone `{zone}` does not exist in region `{region}`."),
            ));
        }
        let image_id =
            req.image_id.clone().filter(|i| !i.is_empty()).ok_or_else(|| ApiError::missing("ImageId"))?;
        let count = req.instance_count.unwrap_or(1);
        if !(1..=MAX_BATCH as i64).contains(&count) {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_RANGE,
                format!(
                    "The value `{count}` of parameter `InstanceCount` is out of range; allowed: 1 to {MAX_BATCH}."
                ),
            ));
        }
        self.check_market(req, count)?;
        let requested = count.unsigned_abs();
        // Stock decides how many a create delivers (MinCount); its error comes after the other
        // checks, as the emulator's.
        let charge_type = req.instance_charge_type.clone().unwrap_or_else(|| "POSTPAID_BY_HOUR".into());
        let instance_type = req.instance_type.clone().unwrap_or_else(|| "S1.SMALL1".into());
        let offering = (zone.to_owned(), instance_type.clone(), charge_type.clone());
        let verdict = self.stock_verdict(offering, requested, req.min_count.map(i64::unsigned_abs));
        let count = verdict.as_ref().map_or(requested, |d| d.count);
        let names = instance_names(req.instance_name.as_deref().unwrap_or(DEFAULT_NAME), count)?;
        let tags = tags_of(req)?;
        let vpc = req.virtual_private_cloud.clone();
        if let Some(v) = &vpc {
            if v.vpc_id.is_empty() {
                return Err(ApiError::missing("VirtualPrivateCloud.VpcId"));
            }
            if v.subnet_id.is_empty() {
                return Err(ApiError::missing("VirtualPrivateCloud.SubnetId"));
            }
        }
        let subnet = vpc.as_ref().map(|v| v.subnet_id.clone()).unwrap_or_default();
        let mut asked =
            vpc.as_ref().and_then(|v| v.private_ip_addresses.clone()).filter(|ips| !ips.is_empty());
        if let Some(ips) = &mut asked {
            self.check_ips(region, &subnet, ips, requested)?;
            ips.truncate(usize::try_from(count).unwrap_or(usize::MAX));
        }
        let delivery = verdict?;
        if dry_run {
            return Err(ApiError::new(
                codes::DRY_RUN_OPERATION,
                "The request would have succeeded, but the DryRun parameter was set.",
            ));
        }
        let ips = match asked {
            Some(ips) => ips,
            None => self.allocate_ips(region, &subnet, count),
        };
        let mut vanished = 0u64;

        let now = self.now();
        let mut ids = Vec::with_capacity(names.len());
        for (name, ip) in names.into_iter().zip(ips) {
            let seq = self.next_seq;
            self.next_seq += 1;
            let id = instance_id(seq, self.config.seed);
            let fails = self.rng.f64() < self.config.faults.launch_failure_rate;
            // Drawn only in a low offering, so that runs without stock see the same faults.
            let stock_vanished =
                delivery.low && self.rng.f64() < self.config.low_stock_launch_failure_rate && !fails;
            vanished += u64::from(stock_vanished);
            let instance = Instance {
                placement: Placement {
                    zone: zone.to_owned(),
                    project_id: Some(placement.project_id.unwrap_or(0)),
                    host_ids: None,
                    host_id: None,
                },
                instance_id: id.clone(),
                instance_type: instance_type.clone(),
                restrict_state: "NORMAL".into(),
                instance_name: name.clone(),
                instance_charge_type: charge_type.clone(),
                system_disk: req.system_disk.clone().unwrap_or_default(),
                data_disks: req.data_disks.clone().unwrap_or_default(),
                private_ip_addresses: vec![ip.clone()],
                internet_accessible: req.internet_accessible.clone().unwrap_or_default(),
                virtual_private_cloud: VirtualPrivateCloud {
                    vpc_id: vpc.as_ref().map(|v| v.vpc_id.clone()).unwrap_or_default(),
                    subnet_id: subnet.clone(),
                    as_vpc_gateway: Some(false),
                    private_ip_addresses: Some(vec![ip.clone()]),
                    ipv6_address_count: Some(0),
                },
                image_id: image_id.clone(),
                created_time: created_time(now, seq),
                security_group_ids: req.security_group_ids.clone().unwrap_or_default(),
                login_settings: LoginSettings {
                    key_ids: req.login_settings.as_ref().and_then(|l| l.key_ids.clone()),
                    ..LoginSettings::default()
                },
                instance_state: state::PENDING.into(),
                tags: tags.clone(),
                stop_charging_mode: "NOT_APPLICABLE".into(),
                uuid: format!("{:08x}-0000-4000-8000-{seq:012x}", self.config.seed as u32),
                latest_operation: Some("RunInstances".into()),
                latest_operation_state: Some("OPERATING".into()),
                latest_operation_request_id: Some(request_id.to_owned()),
                disable_api_termination: req.disable_api_termination.unwrap_or(false),
                host_name: req.host_name.clone().unwrap_or_default(),
                license_type: "TencentCloud".into(),
                isolated_source: "NOTISOLATED".into(),
                ..Instance::default()
            };
            self.created.push(CreatedInstance {
                instance_id: id.clone(),
                region: region.to_owned(),
                zone: zone.to_owned(),
                name,
                private_ip: ip,
                client_token: token.map(str::to_owned),
                tags: tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect(),
                created_at: now,
                created_time: instance.created_time.clone(),
                launch_failed: fails || stock_vanished,
                instance_type: instance_type.clone(),
                charge_type: charge_type.clone(),
                stock_vanished,
            });
            self.by_id.insert(id.clone(), seq);
            self.records
                .insert(seq, Record { seq, region: region.to_owned(), instance, next: None, stock_vanished });
            let step = if fails || stock_vanished { Step::LaunchFailed } else { Step::Running };
            self.schedule(seq, Some((now + self.config.boot_delay, step)));
            ids.push(id);
        }
        // Stock that vanished after acceptance is gone for good.
        if let Some(capacity) = self.stock.get_mut(&delivery.offering) {
            *capacity = capacity.saturating_sub(vanished);
        }
        if let Some(token) = token {
            let record = TokenRecord { instance_ids: ids.clone(), fingerprint: fingerprint(req) };
            self.tokens.insert((region.to_owned(), token.to_owned()), record);
        }
        Ok(RunInstancesResponse { instance_id_set: ids })
    }

    /// Addresses held in a subnet (or a region's basic network): by every listed instance,
    /// `TERMINATING` ones included; `LAUNCH_FAILED` ones hold none.
    fn held_ips(&self, region: &str, subnet: &str) -> BTreeSet<String> {
        self.records
            .values()
            .filter(|r| r.region == region && r.instance.virtual_private_cloud.subnet_id == subnet)
            .flat_map(|r| r.instance.private_ip_addresses.iter().cloned())
            .collect()
    }

    fn check_ips(&self, region: &str, subnet: &str, ips: &[String], count: u64) -> Result<(), ApiError> {
        if ips.len() as u64 != count {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_COMBINATION,
                format!(
                    "`VirtualPrivateCloud.PrivateIpAddresses` holds {} addresses but InstanceCount is {count}; \
                     they must be equal.",
                    ips.len()
                ),
            ));
        }
        let held = self.held_ips(region, subnet);
        let mut seen = BTreeSet::new();
        for ip in ips {
            if ip.parse::<Ipv4Addr>().is_err() {
                return Err(ApiError::new(
                    codes::INVALID_PARAMETER_INVALID_IP_FORMAT,
                    format!("`{ip}` is not a valid private IPv4 address."),
                ));
            }
            if held.contains(ip) || !seen.insert(ip) {
                return Err(ApiError::new(
                    codes::VPC_IP_IS_USED,
                    format!("The address {ip} of subnet `{subnet}` is already in use."),
                ));
            }
        }
        Ok(())
    }

    fn allocate_ips(&mut self, region: &str, subnet: &str, count: u64) -> Vec<String> {
        let held = self.held_ips(region, subnet);
        let mut ips = Vec::new();
        while (ips.len() as u64) < count {
            let ip = Ipv4Addr::from(AUTO_IP_BASE.wrapping_add(self.next_ip));
            self.next_ip = self.next_ip.wrapping_add(1);
            let last = ip.octets()[3];
            if last != 0 && last != 255 && !held.contains(&ip.to_string()) {
                ips.push(ip.to_string());
            }
        }
        ips
    }
}

/// The names of `count` instances, as the emulator's `names.rs`: `{R:x}` numbers them from `x`,
/// `{R:x,F:y}` zero-pads the number to `y` digits (y ≤ 8); without a pattern, several
/// instances get the suffixes `1`..`count` appended (no separator) and one keeps the name.
fn instance_names(template: &str, count: u64) -> Result<Vec<String>, ApiError> {
    enum Piece<'a> {
        Text(&'a str),
        Range(u64, usize),
    }
    let digits = |s: &str| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
    let pattern = |inner: &str| {
        let body = inner.strip_prefix("R:")?;
        let (start, width) = body.split_once(",F:").unwrap_or((body, "0"));
        if !digits(start) || !digits(width) {
            return None;
        }
        let (start, width): (u64, usize) = (start.parse().ok()?, width.parse().ok()?);
        (width <= 8).then_some(Piece::Range(start, width))
    };
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let found =
            rest[open..].find('}').and_then(|close| Some((pattern(&rest[open + 1..open + close])?, close)));
        match found {
            Some((piece, close)) => {
                pieces.push(Piece::Text(&rest[..open]));
                pieces.push(piece);
                rest = &rest[open + close + 1..];
            }
            None => {
                pieces.push(Piece::Text(&rest[..=open]));
                rest = &rest[open + 1..];
            }
        }
    }
    pieces.push(Piece::Text(rest));
    let numbered = pieces.iter().any(|p| matches!(p, Piece::Range(..)));
    let names: Vec<String> = (0..count)
        .map(|i| {
            let mut name: String = pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => (*t).to_owned(),
                    Piece::Range(start, width) => format!("{:0width$}", start.saturating_add(i)),
                })
                .collect();
            if count > 1 && !numbered {
                name.push_str(&(i + 1).to_string());
            }
            name
        })
        .collect();
    names.iter().try_for_each(|n| check_name(n))?;
    Ok(names)
}

/// The tags of `TagSpecification` (resource type `instance` only, keys unique).
fn tags_of(req: &RunInstancesRequest) -> Result<Vec<Tag>, ApiError> {
    let mut tags: Vec<Tag> = Vec::new();
    for (i, spec) in req.tag_specification.iter().flatten().enumerate() {
        if spec.resource_type != "instance" {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE,
                format!(
                    "`TagSpecification.{i}.ResourceType` `{}` is not supported; use `instance`.",
                    spec.resource_type
                ),
            ));
        }
        for tag in &spec.tags {
            if tags.iter().any(|t| t.key == tag.key) {
                return Err(ApiError::new(
                    codes::INVALID_PARAMETER_VALUE,
                    format!("The tag key `{}` is given twice.", tag.key),
                ));
            }
            tags.push(tag.clone());
        }
    }
    Ok(tags)
}

/// The request's canonical JSON without `ClientToken` and `DryRun`, the password counted by
/// presence only (the emulator's `request_fingerprint`, unhashed).
fn fingerprint(req: &RunInstancesRequest) -> String {
    let login_settings = req.login_settings.clone().map(|mut login| {
        login.password = login.password.map(|_| "(set)".to_owned());
        login
    });
    let canonical = RunInstancesRequest { client_token: None, dry_run: None, login_settings, ..req.clone() };
    serde_json::to_string(&canonical).unwrap_or_default()
}

/// `ins-` and 8 base-36 digits: the sequence number, offset by the seed, through a bijection
/// of `0..36^8` (a 42-bit xorshift-multiply permutation, cycle-walked back into range), so IDs
/// never collide and their order says nothing about creation order.
fn instance_id(seq: u64, salt: u64) -> String {
    const SPACE: u64 = 2_821_109_907_456; // 36^8 < 2^42
    const MASK: u64 = (1 << 42) - 1;
    let permute = |mut x: u64| {
        x ^= x >> 21;
        x = x.wrapping_mul(0x9E37_79B9_7F4B) & MASK;
        x ^= x >> 19;
        x = x.wrapping_mul(0x5851_F42D_4C95) & MASK;
        x ^ (x >> 21)
    };
    let mut n = permute((seq % SPACE + salt % SPACE) % SPACE);
    while n >= SPACE {
        n = permute(n);
    }
    let mut out = [b'0'; 8];
    for slot in out.iter_mut().rev() {
        *slot = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    format!("ins-{}", String::from_utf8_lossy(&out))
}

/// `CreatedTime`: 2026-01-01T00:00:00Z plus the elapsed time, with nine fraction digits: the
/// milliseconds, then the creation sequence number (mod 10^6), so that times sort
/// chronologically and never tie, even for instances created at the same instant.
pub(crate) fn created_time(elapsed: Duration, seq: u64) -> String {
    let secs = BASE_UNIX_SECS + elapsed.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        elapsed.subsec_millis(),
        seq % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::check_ids;

    #[test]
    fn names_follow_the_emulator() {
        let names = |t: &str, n| instance_names(t, n).unwrap();
        assert_eq!(names("web", 1), ["web"]);
        assert_eq!(names("web", 3), ["web1", "web2", "web3"]);
        assert_eq!(names("web-{R:7}", 2), ["web-7", "web-8"]);
        assert_eq!(names("db{R:1,F:3}-x", 2), ["db001-x", "db002-x"]);
        assert_eq!(names("a{b}", 2), ["a{b}1", "a{b}2"]);
        assert_eq!(instance_names("", 1).unwrap_err().code, "InvalidParameterValue");
        assert_eq!(instance_names(&"x".repeat(61), 1).unwrap_err().code, "InvalidInstanceName.TooLong");
    }

    #[test]
    fn created_times_sort_and_never_tie() {
        assert_eq!(created_time(Duration::ZERO, 1), "2026-01-01T00:00:00.000000001Z");
        let later = Duration::from_millis(((31 + 28) * 86_400 + 3_661) * 1000 + 42);
        assert_eq!(created_time(later, 7), "2026-03-01T01:01:01.042000007Z");
        assert!(created_time(Duration::ZERO, 2) > created_time(Duration::ZERO, 1));
        assert!(created_time(Duration::from_millis(1), 1) > created_time(Duration::ZERO, 999));
    }

    #[test]
    fn ids_are_well_formed_and_distinct() {
        let in_order: Vec<String> = (1..5000).map(|seq| instance_id(seq, 9)).collect();
        let ids: BTreeSet<String> = in_order.iter().cloned().collect();
        assert_eq!(ids.len(), 4999);
        assert!(in_order[..10].windows(2).any(|w| w[0] > w[1]), "{in_order:?}");
        assert_ne!(instance_id(1, 9), instance_id(1, 10));
        assert!(check_ids(&ids.into_iter().collect::<Vec<_>>()[..100]).is_ok());
    }
}
