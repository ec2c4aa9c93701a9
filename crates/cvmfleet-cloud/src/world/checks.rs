//! The self-contained checks of RunInstances parameters (disks, public network, tags, user
//! data, timers) and the values derived without the state (default names, times).

use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{ActionTimer, DataDisk, InternetAccessible, SystemDisk, Tag};
use cvmfleet_wire::vocab::{
    self, DATA_DISK_DEFAULT_TYPE, DiskCountProblem, DiskSizeProblem, DiskType, INTERNET_CHARGE_TYPE_DEFAULT,
    INTERNET_MAX_BANDWIDTH_OUT_MAX, InternetChargeType, MAX_TAGS, SYSTEM_DISK_DEFAULT_TYPE,
    SYSTEM_DISK_SIZE_DEFAULT, SYSTEM_DISK_SIZE_MAX, SYSTEM_DISK_SIZE_MIN, TAG_KEY_MAX_CHARS,
    TAG_VALUE_MAX_CHARS, UserDataProblem,
};

use crate::api_error::ApiError;
use crate::catalog::ImageSpec;
use crate::names;

pub(super) fn check_system_disk(
    disk: Option<&SystemDisk>,
    image: &ImageSpec,
) -> Result<(String, i64), ApiError> {
    let disk_type =
        disk.and_then(|d| d.disk_type.clone()).unwrap_or_else(|| SYSTEM_DISK_DEFAULT_TYPE.to_string());
    if DiskType::parse(&disk_type).is_none() {
        return Err(ApiError::invalid_value(format!(
            "`SystemDisk.DiskType` `{disk_type}` is not one of {}.",
            DiskType::names()
        )));
    }
    let size = disk.and_then(|d| d.disk_size).unwrap_or(i64::from(SYSTEM_DISK_SIZE_DEFAULT));
    let min = i64::from(SYSTEM_DISK_SIZE_MIN).max(image.image_size);
    let max = i64::from(SYSTEM_DISK_SIZE_MAX);
    if !(min..=max).contains(&size) {
        return Err(ApiError::out_of_range("SystemDisk.DiskSize", size, &format!("{min} to {max} GiB")));
    }
    Ok((disk_type, size))
}

pub(super) fn check_data_disks(disks: &[DataDisk]) -> Result<Vec<DataDisk>, ApiError> {
    let mut types = Vec::with_capacity(disks.len());
    for (i, disk) in disks.iter().enumerate() {
        let kind = match &disk.disk_type {
            None => DATA_DISK_DEFAULT_TYPE,
            Some(text) => DiskType::parse(text).ok_or_else(|| {
                ApiError::invalid_value(format!("`DataDisks.{i}.DiskType` `{text}` is not a disk type."))
            })?,
        };
        types.push(kind);
    }
    if let Some(problem) = vocab::data_disk_count_problem(&types) {
        let message = match problem {
            DiskCountProblem::TooMany(n) => {
                format!("{n} data disks were asked for; at most {} are allowed.", vocab::MAX_DATA_DISKS)
            }
            DiskCountProblem::TooManyLocal(n) => format!(
                "{n} local data disks (LOCAL_BASIC, the default type, or LOCAL_SSD) were asked for; at most {} is allowed.",
                vocab::MAX_LOCAL_DATA_DISKS
            ),
            DiskCountProblem::TooManyCloud(n) => {
                format!(
                    "{n} cloud data disks were asked for; at most {} are allowed.",
                    vocab::MAX_CLOUD_DATA_DISKS
                )
            }
        };
        return Err(ApiError::new(codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED, message));
    }
    let mut out = Vec::with_capacity(disks.len());
    for (i, (disk, kind)) in disks.iter().zip(types).enumerate() {
        if let Some(problem) = vocab::data_disk_size_problem(kind, disk.disk_size) {
            let (min, max) = vocab::data_disk_size_range(kind);
            let message = match problem {
                DiskSizeProblem::NotAStep => format!(
                    "The value `{}` of parameter `DataDisks.{i}.DiskSize` is not a multiple of {} GiB.",
                    disk.disk_size,
                    vocab::DATA_DISK_SIZE_STEP
                ),
                DiskSizeProblem::TooSmall(_) | DiskSizeProblem::TooLarge(_) => format!(
                    "The value `{}` of parameter `DataDisks.{i}.DiskSize` is out of range; allowed for {kind}: {min} to {max} GiB.",
                    disk.disk_size
                ),
            };
            return Err(ApiError::new(problem.code(kind), message));
        }
        out.push(DataDisk {
            disk_size: disk.disk_size,
            disk_type: Some(kind.to_string()),
            disk_id: None,
            delete_with_instance: Some(disk.delete_with_instance.unwrap_or(true)),
            snapshot_id: disk.snapshot_id.clone(),
            encrypt: Some(disk.encrypt.unwrap_or(false)),
        });
    }
    Ok(out)
}

pub(super) fn check_internet(
    internet: Option<&InternetAccessible>,
) -> Result<(InternetAccessible, bool), ApiError> {
    let charge = internet
        .and_then(|i| i.internet_charge_type.clone())
        .unwrap_or_else(|| INTERNET_CHARGE_TYPE_DEFAULT.to_string());
    let Some(kind) = InternetChargeType::parse(&charge) else {
        return Err(ApiError::invalid_value(format!(
            "`InternetAccessible.InternetChargeType` `{charge}` is not one of {}.",
            InternetChargeType::names()
        )));
    };
    let bandwidth = internet.and_then(|i| i.internet_max_bandwidth_out).unwrap_or(0);
    let max = i64::from(INTERNET_MAX_BANDWIDTH_OUT_MAX);
    if !(0..=max).contains(&bandwidth) {
        return Err(ApiError::out_of_range(
            "InternetAccessible.InternetMaxBandwidthOut",
            bandwidth,
            &format!("0 to {max} Mbps"),
        ));
    }
    let asked = internet.and_then(|i| i.public_ip_assigned);
    if asked == Some(true) && bandwidth == 0 {
        // api.json, PublicIpAssigned: "当公网带宽为0，则不允许分配公网IP".
        return Err(ApiError::combination(
            "`InternetAccessible.PublicIpAssigned` is true but `InternetMaxBandwidthOut` is 0; a public IP needs bandwidth.",
        ));
    }
    let package = internet.and_then(|i| i.bandwidth_package_id.clone());
    match (&package, kind == InternetChargeType::BandwidthPackage) {
        (None, true) => return Err(ApiError::missing("InternetAccessible.BandwidthPackageId")),
        (Some(id), false) => {
            return Err(ApiError::new(
                codes::UNSUPPORTED_OPERATION_BANDWIDTH_PACKAGE_ID_NOT_SUPPORTED,
                format!(
                    "The bandwidth package `{id}` needs InternetChargeType BANDWIDTH_PACKAGE, not {charge}."
                ),
            ));
        }
        (Some(id), true) if !names::is_resource_id(id, "bwp") => {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_BANDWIDTH_PACKAGE_ID_MALFORMED,
                format!("The BandwidthPackageId `{id}` is malformed; they look like bwp-xxxxxxxx."),
            ));
        }
        _ => {}
    }
    let public = asked.unwrap_or(bandwidth > 0);
    Ok((
        InternetAccessible {
            internet_charge_type: Some(charge),
            internet_max_bandwidth_out: Some(bandwidth),
            public_ip_assigned: Some(public),
            bandwidth_package_id: package,
        },
        public,
    ))
}

pub(super) fn check_tags(req: &RunInstancesRequest) -> Result<Vec<Tag>, ApiError> {
    let mut tags: Vec<Tag> = Vec::new();
    for (i, spec) in req.tag_specification.iter().flatten().enumerate() {
        if spec.resource_type != "instance" {
            return Err(ApiError::invalid_value(format!(
                "`TagSpecification.{i}.ResourceType` `{}` is not supported; use `instance`.",
                spec.resource_type
            )));
        }
        for tag in &spec.tags {
            check_tag(tag)?;
            if tags.iter().any(|t| t.key == tag.key) {
                return Err(ApiError::invalid_value(format!("The tag key `{}` is given twice.", tag.key)));
            }
            tags.push(tag.clone());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            codes::INVALID_PARAMETER_VALUE_TAG_QUOTA_LIMIT_EXCEEDED,
            format!("{} tags were given; an instance may carry at most {MAX_TAGS}.", tags.len()),
        ));
    }
    Ok(tags)
}

fn check_tag(tag: &Tag) -> Result<(), ApiError> {
    if tag.key.is_empty() || tag.key.chars().count() > TAG_KEY_MAX_CHARS {
        return Err(ApiError::new(
            codes::FAILED_OPERATION_ILLEGAL_TAG_KEY,
            format!("The tag key `{}` must have 1 to {TAG_KEY_MAX_CHARS} characters.", tag.key),
        ));
    }
    if vocab::is_reserved_tag_key(&tag.key) {
        return Err(ApiError::new(
            codes::FAILED_OPERATION_TAG_KEY_RESERVED,
            format!(
                "The tag key `{}` uses a reserved prefix ({}).",
                tag.key,
                vocab::RESERVED_TAG_KEY_PREFIXES.join(", ")
            ),
        ));
    }
    if tag.value.chars().count() > TAG_VALUE_MAX_CHARS {
        return Err(ApiError::new(
            codes::FAILED_OPERATION_ILLEGAL_TAG_VALUE,
            format!("The value of tag `{}` has more than {TAG_VALUE_MAX_CHARS} characters.", tag.key),
        ));
    }
    Ok(())
}

/// Checks base64 user data of at most 16 KiB decoded (shared with ModifyInstancesAttribute).
pub(super) fn check_user_data(data: &str) -> Result<(), ApiError> {
    vocab::check_user_data(data).map_err(|problem| {
        let why = match problem {
            UserDataProblem::NotBase64 => "is not base64-encoded".to_owned(),
            UserDataProblem::TooLarge(n) => {
                format!("decodes to {n} bytes, more than {} (16 KB)", vocab::USER_DATA_MAX_BYTES)
            }
        };
        ApiError::new(codes::INVALID_USER_DATA_FORMAT, format!("The UserData {why}."))
    })
}

/// Reads an `ActionTimer` and returns its time in Unix milliseconds.
pub(super) fn check_action_timer(timer: &ActionTimer, now_ms: i64) -> Result<i64, ApiError> {
    if timer.timer_action.as_deref() != Some("TerminateInstances") {
        return Err(ApiError::invalid_value("`ActionTimer.TimerAction` must be `TerminateInstances`."));
    }
    let text = timer.action_time.as_deref().ok_or_else(|| ApiError::missing("ActionTimer.ActionTime"))?;
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let local = time::PrimitiveDateTime::parse(text, &format).map_err(|_| {
        ApiError::invalid_value(format!(
            "`ActionTimer.ActionTime` `{text}` is not of the form YYYY-MM-DD hh:mm:ss."
        ))
    })?;
    // The API reads the time in China Standard Time (UTC+8).
    let at = (local.assume_utc().unix_timestamp() - 8 * 3600).saturating_mul(1000);
    if at <= now_ms {
        return Err(ApiError::invalid_value(format!(
            "`ActionTimer.ActionTime` `{text}` is not in the future."
        )));
    }
    Ok(at)
}

pub(super) fn default_login_user(image: &ImageSpec) -> &'static str {
    if image.windows {
        "Administrator"
    } else if image.platform == "Ubuntu" {
        "ubuntu"
    } else {
        "root"
    }
}

/// The host name an instance gets when none is asked for: `VM-<3rd octet>-<4th octet>-<os>`.
pub(super) fn default_host_name(ip: u32, image: &ImageSpec) -> String {
    let [_, _, c, d] = ip.to_be_bytes();
    if image.windows {
        format!("VM-{c}-{d}-win")
    } else {
        format!("VM-{c}-{d}-{}", image.platform.to_ascii_lowercase())
    }
}

/// ISO 8601 UTC, `YYYY-MM-DDThh:mm:ssZ`, as the API documents `CreatedTime`.
pub(super) fn format_time(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// `ms` plus a number of calendar months (the day is kept, or clamped to the month's end).
pub(super) fn add_months(ms: i64, months: i64) -> i64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else { return ms };
    let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1 + months;
    let (Ok(year), Ok(month)) = (i32::try_from(total.div_euclid(12)), u8::try_from(total.rem_euclid(12) + 1))
    else {
        return ms;
    };
    let Ok(month) = time::Month::try_from(month) else { return ms };
    let day = t.day().min(month.length(year));
    match time::Date::from_calendar_date(year, month, day) {
        Ok(date) => t.replace_date(date).unix_timestamp() * 1000 + ms.rem_euclid(1000),
        Err(_) => ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time(1_551_113_065_000), "2019-02-25T16:44:25Z");
        let jan31 = 1_706_659_200_000; // 2024-01-31T00:00:00Z
        assert_eq!(format_time(add_months(jan31, 1)), "2024-02-29T00:00:00Z");
        assert_eq!(format_time(add_months(jan31, 12)), "2025-01-31T00:00:00Z");
    }

    #[test]
    fn user_data() {
        assert!(check_user_data("aGVsbG8=").is_ok());
        assert_eq!(
            check_user_data("not base64!").unwrap_err().code,
            "InvalidParameterValue.InvalidUserDataFormat"
        );
        assert!(check_user_data(&"A".repeat(vocab::USER_DATA_MAX_BASE64_CHARS + 4)).is_err());
    }
}
