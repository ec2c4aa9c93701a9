//! RunInstances: validation in the order the parameters are documented, then creation.

use std::collections::BTreeSet;

use cvmfleet_wire::MAX_CLIENT_TOKEN_LEN;
use cvmfleet_wire::api::{RunInstancesRequest, RunInstancesResponse};
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{
    DataDisk, Instance, InternetAccessible, LoginSettings, Placement, SystemDisk, Tag, VirtualPrivateCloud,
};
use cvmfleet_wire::vocab::{
    self, INSTANCE_CHARGE_TYPE_DEFAULT, INSTANCE_COUNT_MAX, INSTANCE_NAME_DEFAULT, INSTANCE_NAME_MAX_BYTES,
    INSTANCE_NAME_MAX_CHARS, InstanceChargeType, InstanceState, MAX_SECURITY_GROUPS, MarketProblem,
    PREPAID_PERIODS, RENEW_FLAG_DEFAULT, RenewFlag,
};

use super::TokenMode;
use super::checks::{
    add_months, check_action_timer, check_data_disks, check_internet, check_system_disk, check_tags,
    check_user_data, default_host_name, default_login_user, format_time,
};
use super::market::Delivery;
use super::{
    Ctx, LaunchDraw, LaunchFate, Mutation, Record, Step, TokenRecord, Transition, World, ip_scope,
    set_operation,
};
use crate::api_error::ApiError;
use crate::catalog::ImageSpec;
use crate::ids;
use crate::names::{self, InstanceTypeShape, NameTemplate};
use crate::net::{self, Cidr};
use crate::stock::Capacity;

/// The fingerprint of a RunInstances request for ClientToken reuse: SHA-256 of its canonical
/// JSON without `ClientToken` and `DryRun`. A password counts by its presence only, so that
/// the state (where fingerprints are kept) holds nothing derived from it.
#[must_use]
fn request_fingerprint(req: &RunInstancesRequest) -> String {
    let login_settings = req.login_settings.clone().map(|mut login| {
        login.password = login.password.map(|_| "(set)".to_owned());
        login
    });
    let canonical = RunInstancesRequest { client_token: None, dry_run: None, login_settings, ..req.clone() };
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    cvmfleet_wire::sign::sha256_hex(&bytes)
}

/// A (VPC ID, subnet ID) pair.
type VpcIds = (String, String);

/// What a RunInstances-shaped request is validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A create (or its DryRun): every check, stock and quota included.
    Run,
    /// A price quote: the parameter checks, and a sold-out offering, but not quota or partial
    /// stock (a quote consumes nothing).
    Quote,
}

/// Everything validation decided, ready to create.
pub(super) struct Plan {
    zone: String,
    project_id: i64,
    image: ImageSpec,
    pub(super) charge_type: String,
    renew_flag: Option<String>,
    pub(super) period_months: Option<i64>,
    pub(super) instance_type: String,
    cpu: i64,
    memory: i64,
    hosts: Vec<String>,
    pub(super) names: Vec<String>,
    key_ids: Option<Vec<String>>,
    security_groups: Vec<String>,
    pub(super) system_disk: (String, i64),
    pub(super) data_disks: Vec<DataDisk>,
    pub(super) internet: InternetAccessible,
    public_ips: Vec<u32>,
    vpc: Option<(String, String)>,
    private_ips: Vec<u32>,
    host_names: Vec<String>,
    tags: Vec<Tag>,
    terminate_at: Option<i64>,
    delivery: Delivery,
}

impl World {
    /// RunInstances. `launch` decides, per created instance, what becomes of it.
    pub fn run_instances(
        &mut self,
        ctx: &Ctx,
        req: &RunInstancesRequest,
        launch: &mut dyn FnMut(LaunchDraw) -> LaunchFate,
    ) -> Result<(RunInstancesResponse, Mutation), ApiError> {
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
                return Err(ApiError::invalid_value("The ClientToken must consist of ASCII characters."));
            }
        }
        let dry_run = req.dry_run.unwrap_or(false);
        if let (Some(token), false) = (token, dry_run) {
            let key = (ctx.secret_id.clone(), ctx.region.clone(), token.to_owned());
            if let Some(previous) = self.tokens.get(&key) {
                if self.settings.token_mode == TokenMode::Strict
                    && previous.fingerprint != request_fingerprint(req)
                {
                    return Err(ApiError::invalid_parameter(format!(
                        "The ClientToken `{token}` was already used with different parameters (instances {}); \
                         use a new ClientToken for a different request.",
                        previous.instance_ids.join(", ")
                    )));
                }
                let response = RunInstancesResponse { instance_id_set: previous.instance_ids.clone() };
                return Ok((response, Mutation::default()));
            }
        }

        let plan = self.plan_run(ctx, req, Purpose::Run)?;
        if dry_run {
            return Err(ApiError::new(
                codes::DRY_RUN_OPERATION,
                "The request would have succeeded, but the DryRun parameter was set.",
            ));
        }
        Ok(self.create(ctx, req, token, &plan, launch))
    }

    #[allow(clippy::too_many_lines)]
    pub(super) fn plan_run(
        &self,
        ctx: &Ctx,
        req: &RunInstancesRequest,
        purpose: Purpose,
    ) -> Result<Plan, ApiError> {
        let catalog = &*self.catalog;
        if self.settings.unqualified_secret_ids.contains(&ctx.secret_id) {
            return Err(ApiError::new(
                codes::ACCOUNT_QUALIFICATION_RESTRICTIONS,
                "The account of this SecretId has not passed the qualification audit and cannot buy instances.",
            ));
        }

        // Placement.
        let placement = req
            .placement
            .as_ref()
            .filter(|p| !p.zone.is_empty())
            .ok_or_else(|| ApiError::missing("Placement.Zone"))?;
        let zone = placement.zone.as_str();
        if catalog.zone_region(zone) != Some(ctx.region.as_str()) {
            return Err(ApiError::new(
                codes::INVALID_ZONE_MISMATCH_REGION,
                format!("The zone `{zone}` does not exist in region `{}`.", ctx.region),
            ));
        }
        if catalog.zone(zone).is_some_and(|z| !z.available) {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_ZONE_NOT_SUPPORTED,
                format!("The zone `{zone}` does not sell instances at the moment."),
            ));
        }
        let project_id = placement.project_id.unwrap_or(0);
        if project_id < 0 {
            return Err(ApiError::invalid_value(format!(
                "`Placement.ProjectId` {project_id} is not a project."
            )));
        }

        // Image.
        let image_id =
            req.image_id.as_deref().filter(|i| !i.is_empty()).ok_or_else(|| ApiError::missing("ImageId"))?;
        if !names::is_resource_id(image_id, "img") {
            return Err(ApiError::new(
                codes::INVALID_IMAGE_ID_MALFORMED,
                format!("The ImageId `{image_id}` is malformed; image IDs look like img-xxxxxxxx."),
            ));
        }
        let image = catalog.image(image_id).ok_or_else(|| {
            ApiError::new(
                codes::INVALID_IMAGE_ID_NOT_FOUND,
                format!("The image `{image_id}` does not exist."),
            )
        })?;

        // Billing.
        let charge_type =
            req.instance_charge_type.clone().unwrap_or_else(|| INSTANCE_CHARGE_TYPE_DEFAULT.to_string());
        let Some(charge) = InstanceChargeType::parse(&charge_type) else {
            return Err(ApiError::invalid_value(format!(
                "`InstanceChargeType` `{charge_type}` is not one of {}.",
                InstanceChargeType::names()
            )));
        };
        if purpose == Purpose::Quote && !vocab::PRICED_CHARGE_TYPES.contains(&charge) {
            // api.json, InquiryPriceRunInstances `InstanceChargeType`: PREPAID, POSTPAID_BY_HOUR
            // or SPOTPAID.
            return Err(ApiError::invalid_value(format!(
                "InquiryPriceRunInstances prices PREPAID, POSTPAID_BY_HOUR and SPOTPAID instances, not {charge}."
            )));
        }
        let (mut renew_flag, mut period_months) = (None, None);
        if charge == InstanceChargeType::Prepaid {
            let prepaid = req
                .instance_charge_prepaid
                .as_ref()
                .ok_or_else(|| ApiError::missing("InstanceChargePrepaid"))?;
            if !PREPAID_PERIODS.iter().any(|p| i64::from(*p) == prepaid.period) {
                return Err(ApiError::new(
                    codes::INVALID_PERIOD,
                    format!(
                        "The period {} is not supported; periods are 1 to 12, 24 or 36 months.",
                        prepaid.period
                    ),
                ));
            }
            let flag = prepaid.renew_flag.clone().unwrap_or_else(|| RENEW_FLAG_DEFAULT.to_string());
            if RenewFlag::parse(&flag).is_none() {
                return Err(ApiError::invalid_value(format!(
                    "`InstanceChargePrepaid.RenewFlag` `{flag}` is not one of {}.",
                    RenewFlag::names()
                )));
            }
            renew_flag = Some(flag);
            period_months = Some(prepaid.period);
        }
        if let Some(options) = &req.instance_market_options
            && let Some(problem) = vocab::market_options_problem(options)
        {
            return Err(match problem {
                MarketProblem::MissingSpotOptions => ApiError::missing("InstanceMarketOptions.SpotOptions"),
                MarketProblem::MissingMaxPrice => {
                    ApiError::missing("InstanceMarketOptions.SpotOptions.MaxPrice")
                }
                other => ApiError::invalid_value(format!("{other}.")),
            });
        }

        // Count.
        let count = req.instance_count.unwrap_or(1);
        let max = i64::from(INSTANCE_COUNT_MAX);
        if !(1..=max).contains(&count) {
            return Err(ApiError::out_of_range("InstanceCount", count, &format!("1 to {max}")));
        }
        if let Some(min) = req.min_count
            && !vocab::min_count_in_range(min, count)
        {
            return Err(ApiError::out_of_range("MinCount", min, &format!("1 to InstanceCount ({count})")));
        }
        let min_count = req.min_count.map(i64::unsigned_abs);
        let requested = count.unsigned_abs();

        // Instance type and dedicated hosts.
        let instance_type = req.instance_type.clone().unwrap_or_else(|| "S1.SMALL1".into());
        let shape = names::instance_type_shape(&instance_type).ok_or_else(|| {
            ApiError::new(
                codes::INVALID_INSTANCE_TYPE_MALFORMED,
                format!(
                    "The InstanceType `{instance_type}` is malformed; types look like S5.MEDIUM2 or CDH_1C1G."
                ),
            )
        })?;
        let (cpu, memory) = match shape {
            InstanceTypeShape::Cdh { cpu, memory } => {
                if charge != InstanceChargeType::Cdhpaid {
                    return Err(ApiError::combination(format!(
                        "The InstanceType `{instance_type}` is for dedicated hosts and needs InstanceChargeType CDHPAID."
                    )));
                }
                (i64::from(cpu), i64::from(memory))
            }
            InstanceTypeShape::Standard => {
                let spec = catalog.instance_type(&instance_type).ok_or_else(|| {
                    ApiError::new(
                        codes::INVALID_PARAMETER_VALUE_INSTANCE_TYPE_NOT_FOUND,
                        format!("The instance type `{instance_type}` does not exist."),
                    )
                })?;
                if spec.requires_permission {
                    return Err(ApiError::new(
                        codes::INVALID_PERMISSION,
                        format!("The account is not allowed to buy instance type `{instance_type}`."),
                    ));
                }
                if !spec.sold_in(zone) {
                    return Err(ApiError::new(
                        codes::RESOURCE_UNAVAILABLE_INSTANCE_TYPE,
                        format!("The zone `{zone}` does not sell instance type `{instance_type}`."),
                    ));
                }
                (spec.cpu, spec.memory)
            }
        };

        // Stock decides how many instances a create delivers (MinCount); its error is answered
        // after every parameter check, as the cloud checks stock last.
        let verdict = match purpose {
            Purpose::Run => self.stock_verdict(zone, &instance_type, charge, requested, min_count),
            // A quote is refused only when nothing is left, with the code the quote documents.
            Purpose::Quote => self
                .stock_verdict(zone, &instance_type, charge, 1, None)
                .map(|delivery| Delivery { count: requested, ..delivery })
                .map_err(|e| ApiError::new(codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE, e.message)),
        };
        let count = verdict.as_ref().map_or(requested, |delivery| delivery.count);
        let hosts = placement.host_ids.clone().unwrap_or_default();
        if charge == InstanceChargeType::Cdhpaid && hosts.is_empty() {
            return Err(ApiError::missing("Placement.HostIds"));
        }
        if charge != InstanceChargeType::Cdhpaid && !hosts.is_empty() {
            return Err(ApiError::combination("`Placement.HostIds` needs InstanceChargeType CDHPAID."));
        }
        for host in &hosts {
            if !names::is_resource_id(host, "host") {
                return Err(ApiError::new(
                    codes::INVALID_HOST_ID_MALFORMED,
                    format!("The HostId `{host}` is malformed; host IDs look like host-xxxxxxxx."),
                ));
            }
            if catalog.host(host).is_none_or(|h| h.zone != zone) {
                return Err(ApiError::new(
                    codes::INVALID_HOST_ID_NOT_FOUND,
                    format!("The dedicated host `{host}` does not exist in zone `{zone}`."),
                ));
            }
        }

        // Names.
        let name_template = req.instance_name.clone().unwrap_or_else(|| INSTANCE_NAME_DEFAULT.into());
        if name_template.is_empty() {
            return Err(ApiError::invalid_value("`InstanceName` must not be empty."));
        }
        if name_template.chars().count() > INSTANCE_NAME_MAX_CHARS {
            return Err(name_too_long(&name_template));
        }
        let template = NameTemplate::parse(&name_template, false);
        let names: Vec<String> = (0..count).map(|i| template.render(i, count, "")).collect();
        if let Some(long) = names.iter().find(|n| n.len() > INSTANCE_NAME_MAX_BYTES) {
            return Err(name_too_long(long));
        }

        // Login.
        let key_ids = self.check_login(req.login_settings.as_ref(), image)?;

        // Security groups.
        let security_groups = req.security_group_ids.clone().unwrap_or_default();
        self.check_security_groups(&ctx.region, &security_groups, "SecurityGroupIds")?;

        // Disks.
        let system_disk = check_system_disk(req.system_disk.as_ref(), image)?;
        let data_disks = check_data_disks(req.data_disks.as_deref().unwrap_or_default())?;

        // Public network.
        let (internet, public_ip) = check_internet(req.internet_accessible.as_ref())?;

        // VPC and private IPs (as many as InstanceCount; a partial delivery uses the first ones).
        let (vpc, mut requested_ips) =
            self.check_vpc(ctx, zone, req.virtual_private_cloud.as_ref(), requested)?;
        if let Some(ips) = &mut requested_ips {
            ips.truncate(usize::try_from(count).unwrap_or(usize::MAX));
        }

        // Tags, user data, timer.
        let tags = check_tags(req)?;
        if let Some(data) = &req.user_data {
            check_user_data(data)?;
        }
        let terminate_at = match &req.action_timer {
            Some(timer) => Some(check_action_timer(timer, ctx.now_ms)?),
            None => None,
        };

        // Quota, spot bid, stock and capacity.
        if let Some(quota) = self.settings.instance_quota.filter(|_| purpose == Purpose::Run) {
            let used = self.region_count.get(&ctx.region).copied().unwrap_or(0);
            if u64::from(used) + count > u64::from(quota) {
                return Err(ApiError::new(
                    codes::INSTANCES_QUOTA_LIMIT_EXCEEDED,
                    format!(
                        "Creating {count} instances would exceed the quota of {quota} instances in region `{}` \
                         ({used} in use).",
                        ctx.region
                    ),
                ));
            }
        }
        if charge == InstanceChargeType::Spotpaid
            && let Some(bid) = req
                .instance_market_options
                .as_ref()
                .and_then(|o| o.spot_options.as_ref())
                .and_then(|s| s.max_price.as_deref())
                .and_then(vocab::parse_max_price)
            && let Some(price) = catalog.catalog.prices.spot_price(&ctx.region, &instance_type)
            && bid < price
        {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_PRICE,
                format!(
                    "The bid of {bid} yuan per hour is below the spot price of {instance_type}, {price}."
                ),
            ));
        }
        let delivery = verdict?;
        let hosts = self.place_on_hosts(&hosts, count, cpu, memory)?;

        // Addresses.
        let private_ips = match requested_ips {
            Some(ips) => ips,
            None => self.allocate_private(ctx, vpc.as_ref().map(|(_, s)| s.as_str()), count)?,
        };
        let public_ips = if public_ip { self.allocate_public(count)? } else { Vec::new() };

        // Host names need the IPs.
        let host_names = self.host_names(req.host_name.as_deref(), image, &private_ips)?;

        Ok(Plan {
            zone: zone.to_owned(),
            project_id,
            image: image.clone(),
            charge_type,
            renew_flag,
            period_months,
            instance_type,
            cpu,
            memory,
            hosts,
            names,
            key_ids,
            security_groups,
            system_disk,
            data_disks,
            internet,
            public_ips,
            vpc,
            private_ips,
            host_names,
            tags,
            terminate_at,
            delivery,
        })
    }

    fn check_login(
        &self,
        login: Option<&LoginSettings>,
        image: &ImageSpec,
    ) -> Result<Option<Vec<String>>, ApiError> {
        let Some(login) = login else { return Ok(None) };
        let keys = login.key_ids.clone().filter(|k| !k.is_empty());
        let keep = login.keep_image_login.as_deref();
        if let Some(keep) = keep
            && !matches!(keep, "TRUE" | "FALSE" | "true" | "false")
        {
            return Err(ApiError::invalid_value("`LoginSettings.KeepImageLogin` must be TRUE or FALSE."));
        }
        let keeping = matches!(keep, Some("TRUE" | "true"));
        if login.password.is_some() && keys.is_some() {
            return Err(ApiError::combination(
                "`LoginSettings.Password` and `LoginSettings.KeyIds` cannot be used together.",
            ));
        }
        if keeping && (login.password.is_some() || keys.is_some()) {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_PARAMETER_CONFLICT,
                "`LoginSettings.KeepImageLogin` cannot be combined with a password or key pairs.",
            ));
        }
        if let Some(password) = &login.password {
            names::check_password(password, image.windows).map_err(|why| {
                ApiError::new(
                    codes::INVALID_PASSWORD,
                    format!("The password does not meet the complexity rules: it {why}."),
                )
            })?;
        }
        if let Some(keys) = &keys {
            if image.windows {
                return Err(ApiError::new(
                    codes::UNSUPPORTED_OPERATION_KEY_PAIR_UNSUPPORTED_WINDOWS,
                    "Windows instances cannot log in with key pairs.",
                ));
            }
            if keys.len() > 1 {
                return Err(ApiError::new(
                    codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED,
                    "Only one key pair can be bound when creating instances.",
                ));
            }
            for key in keys {
                if !names::is_resource_id(key, "skey") {
                    return Err(ApiError::new(
                        codes::INVALID_KEY_PAIR_ID_MALFORMED,
                        format!(
                            "The key pair ID `{key}` is malformed; key pair IDs look like skey-xxxxxxxx."
                        ),
                    ));
                }
                if !self.catalog.has_key_pair(key) {
                    return Err(ApiError::new(
                        codes::INVALID_KEY_PAIR_ID_NOT_FOUND,
                        format!("The key pair `{key}` does not exist."),
                    ));
                }
            }
        }
        Ok(keys)
    }

    /// Checks security group IDs of a region (shared with ModifyInstancesAttribute).
    pub(super) fn check_security_groups(
        &self,
        region: &str,
        ids: &[String],
        param: &str,
    ) -> Result<(), ApiError> {
        if ids.len() > MAX_SECURITY_GROUPS {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED,
                format!(
                    "`{param}` holds {} security groups; at most {MAX_SECURITY_GROUPS} are allowed.",
                    ids.len()
                ),
            ));
        }
        for id in ids {
            if !names::is_resource_id(id, "sg") {
                return Err(ApiError::new(
                    codes::INVALID_SG_ID_MALFORMED,
                    format!("The security group ID `{id}` is malformed; they look like sg-xxxxxxxx."),
                ));
            }
            if self.catalog.security_group(id).is_none_or(|sg| sg.region != region) {
                return Err(ApiError::new(
                    codes::INVALID_SECURITY_GROUP_ID_NOT_FOUND,
                    format!("The security group `{id}` does not exist in region `{region}`."),
                ));
            }
        }
        Ok(())
    }

    fn check_vpc(
        &self,
        ctx: &Ctx,
        zone: &str,
        vpc: Option<&VirtualPrivateCloud>,
        count: u64,
    ) -> Result<(Option<VpcIds>, Option<Vec<u32>>), ApiError> {
        let Some(vpc) = vpc else { return Ok((None, None)) };
        if vpc.vpc_id.is_empty() {
            return Err(ApiError::missing("VirtualPrivateCloud.VpcId"));
        }
        if !names::is_resource_id(&vpc.vpc_id, "vpc") {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_VPC_ID_MALFORMED,
                format!("The VPC ID `{}` is malformed; VPC IDs look like vpc-xxxxxxxx.", vpc.vpc_id),
            ));
        }
        if self.catalog.vpc(&vpc.vpc_id).is_none_or(|v| v.region != ctx.region) {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_VPC_ID_NOT_EXIST,
                format!("The VPC `{}` does not exist in region `{}`.", vpc.vpc_id, ctx.region),
            ));
        }
        if vpc.subnet_id.is_empty() {
            return Err(ApiError::missing("VirtualPrivateCloud.SubnetId"));
        }
        if !names::is_resource_id(&vpc.subnet_id, "subnet") {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_SUBNET_ID_MALFORMED,
                format!(
                    "The subnet ID `{}` is malformed; subnet IDs look like subnet-xxxxxxxx.",
                    vpc.subnet_id
                ),
            ));
        }
        let (owner, subnet) = self.catalog.subnet(&vpc.subnet_id).ok_or_else(|| {
            ApiError::new(
                codes::INVALID_PARAMETER_VALUE_SUBNET_NOT_EXIST,
                format!("The subnet `{}` does not exist.", vpc.subnet_id),
            )
        })?;
        if owner.vpc_id != vpc.vpc_id {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_VPC_ID_SUBNET_ID_NOT_MATCH,
                format!(
                    "The subnet `{}` belongs to `{}`, not to `{}`.",
                    vpc.subnet_id, owner.vpc_id, vpc.vpc_id
                ),
            ));
        }
        if subnet.zone != zone {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_SUBNET_ID_ZONE_ID_NOT_MATCH,
                format!("The subnet `{}` is in zone `{}`, not in `{zone}`.", vpc.subnet_id, subnet.zone),
            ));
        }
        let ids = (vpc.vpc_id.clone(), vpc.subnet_id.clone());
        let Some(requested) = vpc.private_ip_addresses.as_ref().filter(|ips| !ips.is_empty()) else {
            return Ok((Some(ids), None));
        };
        if requested.len() as u64 != count {
            return Err(ApiError::combination(format!(
                "`VirtualPrivateCloud.PrivateIpAddresses` holds {} addresses but InstanceCount is {count}; they must be equal.",
                requested.len()
            )));
        }
        let scope = ip_scope(&ctx.region, &vpc.subnet_id);
        let mut seen = BTreeSet::new();
        let mut ips = Vec::with_capacity(requested.len());
        for text in requested {
            let ip = net::parse_ipv4(text).ok_or_else(|| {
                ApiError::new(
                    codes::INVALID_PARAMETER_INVALID_IP_FORMAT,
                    format!("`{text}` is not a valid private IPv4 address."),
                )
            })?;
            if !subnet.cidr.contains(ip) {
                return Err(ApiError::new(
                    codes::VPC_ADDR_NOT_IN_SUB_NET,
                    format!("The address {text} is not inside subnet `{}` ({}).", vpc.subnet_id, subnet.cidr),
                ));
            }
            if subnet.cidr.is_reserved(ip)
                || self.private_ips.contains(&(scope.clone(), ip))
                || !seen.insert(ip)
            {
                return Err(ApiError::new(
                    codes::VPC_IP_IS_USED,
                    format!("The address {text} of subnet `{}` is already in use.", vpc.subnet_id),
                ));
            }
            ips.push(ip);
        }
        Ok((Some(ids), Some(ips)))
    }

    /// Picks a host with room for each instance, in the order given.
    fn place_on_hosts(
        &self,
        hosts: &[String],
        count: u64,
        cpu: i64,
        memory: i64,
    ) -> Result<Vec<String>, ApiError> {
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        let mut free: Vec<(String, i64, i64)> = hosts
            .iter()
            .filter_map(|h| {
                let spec = self.catalog.host(h)?;
                let (used_cpu, used_mem) = self.host_usage.get(h).copied().unwrap_or_default();
                Some((h.clone(), spec.cpu - used_cpu, spec.memory - used_mem))
            })
            .collect();
        let mut placed = Vec::new();
        for _ in 0..count {
            let slot = free.iter_mut().find(|(_, c, m)| *c >= cpu && *m >= memory).ok_or_else(|| {
                ApiError::new(
                    codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE,
                    format!(
                        "The dedicated hosts {} have no room left for {count} instances of {cpu} vCPU / {memory} GiB.",
                        hosts.join(", ")
                    ),
                )
            })?;
            slot.1 -= cpu;
            slot.2 -= memory;
            placed.push(slot.0.clone());
        }
        Ok(placed)
    }

    fn allocate_private(&self, ctx: &Ctx, subnet_id: Option<&str>, count: u64) -> Result<Vec<u32>, ApiError> {
        let (cidr, scope): (Cidr, String) = match subnet_id {
            Some(id) => match self.catalog.subnet(id) {
                Some((_, s)) => (s.cidr, ip_scope(&ctx.region, id)),
                None => return Err(ApiError::internal("The subnet disappeared.")),
            },
            None => match self.catalog.region(&ctx.region) {
                Some(r) => (r.basic_network, ip_scope(&ctx.region, "")),
                None => return Err(ApiError::internal("The region disappeared.")),
            },
        };
        let cursor = self.ip_cursor.get(&scope).copied().unwrap_or(cidr.network());
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        net::find_free(cidr, cursor, count, |ip| self.private_ips.contains(&(scope.clone(), ip))).ok_or_else(
            || {
                ApiError::new(
                    codes::FAILED_OPERATION_NO_AVAILABLE_IP_ADDRESS_COUNT_IN_SUBNET,
                    format!("The network {cidr} has fewer than {count} free addresses."),
                )
            },
        )
    }

    fn allocate_public(&self, count: u64) -> Result<Vec<u32>, ApiError> {
        let pool = self.catalog.catalog.public_ip_pool;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        net::find_free(pool, self.public_cursor, count, |ip| self.public_ips.contains(&ip)).ok_or_else(|| {
            ApiError::new(codes::RESOURCES_SOLD_OUT_EIP_INSUFFICIENT, "The public IP pool is exhausted.")
        })
    }

    fn host_names(&self, raw: Option<&str>, image: &ImageSpec, ips: &[u32]) -> Result<Vec<String>, ApiError> {
        let count = ips.len() as u64;
        let names: Vec<String> = match raw {
            Some(raw) => {
                let template = NameTemplate::parse(raw, true);
                ips.iter()
                    .enumerate()
                    .map(|(i, ip)| template.render(i as u64, count, &net::format_ipv4(*ip)))
                    .collect()
            }
            None => ips.iter().map(|ip| default_host_name(*ip, image)).collect(),
        };
        if raw.is_some() {
            for name in &names {
                names::check_host_name(name, image.windows).map_err(|why| {
                    ApiError::new(codes::ILLEGAL_HOST_NAME, format!("The host name `{name}` {why}."))
                })?;
            }
        }
        Ok(names)
    }

    #[allow(clippy::too_many_lines)]
    fn create(
        &mut self,
        ctx: &Ctx,
        req: &RunInstancesRequest,
        token: Option<&str>,
        plan: &Plan,
        launch: &mut dyn FnMut(LaunchDraw) -> LaunchFate,
    ) -> (RunInstancesResponse, Mutation) {
        let public_ips = &plan.public_ips;
        let created = format_time(ctx.now_ms);
        let expired = plan.period_months.map(|months| format_time(add_months(ctx.now_ms, months)));
        let draw = LaunchDraw {
            low_stock: plan.delivery.limited && plan.delivery.low,
            spot: plan.charge_type == InstanceChargeType::Spotpaid.as_str(),
        };
        let mut vanished = 0u64;
        let mut records = Vec::with_capacity(plan.names.len());
        for i in 0..plan.names.len() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let id = ids::instance_id(seq, self.salt);
            let ip = plan.private_ips.get(i).copied().map(net::format_ipv4).unwrap_or_default();
            let (vpc_id, subnet_id) = plan.vpc.clone().unwrap_or_default();
            let mut instance = Instance {
                placement: Placement {
                    zone: plan.zone.clone(),
                    project_id: Some(plan.project_id),
                    host_ids: None,
                    host_id: plan.hosts.get(i).cloned(),
                },
                instance_id: id.clone(),
                instance_type: plan.instance_type.clone(),
                cpu: plan.cpu,
                memory: plan.memory,
                restrict_state: "NORMAL".into(),
                instance_name: plan.names[i].clone(),
                instance_charge_type: plan.charge_type.clone(),
                system_disk: SystemDisk {
                    disk_type: Some(plan.system_disk.0.clone()),
                    disk_id: Some(ids::disk_id(seq, 0, self.salt)),
                    disk_size: Some(plan.system_disk.1),
                },
                data_disks: plan
                    .data_disks
                    .iter()
                    .enumerate()
                    .map(|(d, disk)| DataDisk {
                        disk_id: Some(ids::disk_id(seq, d as u64 + 1, self.salt)),
                        ..disk.clone()
                    })
                    .collect(),
                private_ip_addresses: vec![ip.clone()],
                public_ip_addresses: public_ips.get(i).map(|p| vec![net::format_ipv4(*p)]),
                internet_accessible: plan.internet.clone(),
                virtual_private_cloud: VirtualPrivateCloud {
                    vpc_id,
                    subnet_id,
                    as_vpc_gateway: Some(false),
                    private_ip_addresses: Some(vec![ip]),
                    ipv6_address_count: Some(0),
                },
                image_id: plan.image.image_id.clone(),
                renew_flag: plan.renew_flag.clone(),
                created_time: created.clone(),
                expired_time: expired.clone(),
                os_name: plan.image.os_name.clone(),
                security_group_ids: plan.security_groups.clone(),
                login_settings: LoginSettings {
                    password: None,
                    key_ids: plan.key_ids.clone(),
                    keep_image_login: None,
                },
                instance_state: InstanceState::Pending.into(),
                tags: plan.tags.clone(),
                stop_charging_mode: "NOT_APPLICABLE".into(),
                uuid: ids::instance_uuid(seq, self.salt),
                disable_api_termination: req.disable_api_termination.unwrap_or(false),
                host_name: plan.host_names.get(i).cloned().unwrap_or_default(),
                default_login_user: default_login_user(&plan.image).into(),
                default_login_port: if plan.image.windows { 3389 } else { 22 },
                license_type: "TencentCloud".into(),
                ipv6_addresses: None,
                isolated_source: "NOTISOLATED".into(),
                ..Instance::default()
            };
            set_operation(&mut instance, "RunInstances", "OPERATING", Some(&ctx.request_id));
            let fate = launch(draw);
            let to = if fate.fails {
                Step::LaunchFailed
            } else if fate.stock_vanishes && draw.low_stock {
                vanished += 1;
                Step::LaunchFailedNoStock
            } else {
                Step::Running
            };
            let running_at = ctx.now_ms + self.settings.boot_delay_ms;
            records.push(Record {
                seq,
                region: ctx.region.clone(),
                next: Some(Transition { at: running_at, to }),
                terminate_at: plan.terminate_at,
                reclaim_at: fate
                    .reclaim_after_ms
                    .filter(|_| draw.spot && to == Step::Running)
                    .map(|after| running_at.saturating_add(after)),
                instance,
            });
        }
        if let (Some(&last), Some((_, subnet))) = (plan.private_ips.last(), plan.vpc.as_ref()) {
            self.ip_cursor.insert(ip_scope(&ctx.region, subnet), last.wrapping_add(1));
        } else if let Some(&last) = plan.private_ips.last() {
            self.ip_cursor.insert(ip_scope(&ctx.region, ""), last.wrapping_add(1));
        }
        if let Some(&last) = public_ips.last() {
            self.public_cursor = last.wrapping_add(1);
        }
        let instance_ids: Vec<String> = records.iter().map(|r| r.instance.instance_id.clone()).collect();
        let tokens: Vec<TokenRecord> = token
            .map(|token| TokenRecord {
                secret_id: ctx.secret_id.clone(),
                region: ctx.region.clone(),
                token: token.to_owned(),
                instance_ids: instance_ids.clone(),
                fingerprint: request_fingerprint(req),
                created: ctx.now_ms,
            })
            .into_iter()
            .collect();
        // Stock that vanished after acceptance is gone for good: the capacity shrinks by it.
        let stock = match self.capacity_of(&plan.delivery.offering) {
            Some(capacity) if vanished > 0 => vec![Capacity {
                offering: plan.delivery.offering.clone(),
                capacity: Some(capacity.saturating_sub(vanished)),
            }],
            _ => Vec::new(),
        };
        let mutation = Mutation { put: records, tokens, stock };
        self.apply(mutation.clone());
        (RunInstancesResponse { instance_id_set: instance_ids }, mutation)
    }
}

fn name_too_long(name: &str) -> ApiError {
    ApiError::new(
        codes::INVALID_INSTANCE_NAME_TOO_LONG,
        format!(
            "The InstanceName `{name}` is too long: names may have at most {INSTANCE_NAME_MAX_BYTES} bytes \
             ({INSTANCE_NAME_MAX_CHARS} characters with patterns)."
        ),
    )
}
