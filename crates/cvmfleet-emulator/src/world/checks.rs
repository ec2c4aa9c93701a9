//! The self-contained checks of RunInstances parameters (disks, public network, tags, user
//! data, timers) and the values derived without the state (default names, times).

use base64::Engine as _;
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::{ActionTimer, DataDisk, InternetAccessible, SystemDisk, Tag};

use crate::api_error::ApiError;
use crate::catalog::ImageSpec;

const DISK_TYPES: [&str; 8] = [
    "LOCAL_BASIC",
    "LOCAL_SSD",
    "CLOUD_BASIC",
    "CLOUD_SSD",
    "CLOUD_PREMIUM",
    "CLOUD_BSSD",
    "CLOUD_HSSD",
    "CLOUD_TSSD",
];
const INTERNET_CHARGE_TYPES: [&str; 4] =
    ["BANDWIDTH_PREPAID", "TRAFFIC_POSTPAID_BY_HOUR", "BANDWIDTH_POSTPAID_BY_HOUR", "BANDWIDTH_PACKAGE"];
/// System disk sizes in GiB.
const SYSTEM_DISK_RANGE: (i64, i64) = (20, 1024);
/// Data disk sizes in GiB.
const DATA_DISK_RANGE: (i64, i64) = (10, 32_000);
/// Most data disks per instance.
const MAX_DATA_DISKS: usize = 21;
/// Outbound bandwidth cap range in Mbps.
const BANDWIDTH_RANGE: (i64, i64) = (0, 1000);
/// Most tags per instance.
const MAX_TAGS: usize = 50;
/// Largest UserData, in bytes of its base64 text.
const MAX_USER_DATA: usize = 16 * 1024;

pub(super) fn check_system_disk(
    disk: Option<&SystemDisk>,
    image: &ImageSpec,
) -> Result<(String, i64), ApiError> {
    let disk_type = disk.and_then(|d| d.disk_type.clone()).unwrap_or_else(|| "CLOUD_PREMIUM".into());
    if !DISK_TYPES.contains(&disk_type.as_str()) {
        return Err(ApiError::invalid_value(format!(
            "`SystemDisk.DiskType` `{disk_type}` is not one of {}.",
            DISK_TYPES.join(", ")
        )));
    }
    let size = disk.and_then(|d| d.disk_size).unwrap_or(50);
    let min = SYSTEM_DISK_RANGE.0.max(image.image_size);
    if !(min..=SYSTEM_DISK_RANGE.1).contains(&size) {
        return Err(ApiError::out_of_range(
            "SystemDisk.DiskSize",
            size,
            &format!("{min} to {} GiB", SYSTEM_DISK_RANGE.1),
        ));
    }
    Ok((disk_type, size))
}

pub(super) fn check_data_disks(disks: &[DataDisk]) -> Result<Vec<DataDisk>, ApiError> {
    if disks.len() > MAX_DATA_DISKS {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!("{} data disks were asked for; at most {MAX_DATA_DISKS} are allowed.", disks.len()),
        ));
    }
    let mut out = Vec::with_capacity(disks.len());
    for (i, disk) in disks.iter().enumerate() {
        let disk_type = disk.disk_type.clone().unwrap_or_else(|| "CLOUD_PREMIUM".into());
        if !DISK_TYPES.contains(&disk_type.as_str()) {
            return Err(ApiError::invalid_value(format!(
                "`DataDisks.{i}.DiskType` `{disk_type}` is not a disk type."
            )));
        }
        if !(DATA_DISK_RANGE.0..=DATA_DISK_RANGE.1).contains(&disk.disk_size) {
            return Err(ApiError::out_of_range(
                &format!("DataDisks.{i}.DiskSize"),
                disk.disk_size,
                &format!("{} to {} GiB", DATA_DISK_RANGE.0, DATA_DISK_RANGE.1),
            ));
        }
        out.push(DataDisk {
            disk_size: disk.disk_size,
            disk_type: Some(disk_type),
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
        .unwrap_or_else(|| "TRAFFIC_POSTPAID_BY_HOUR".into());
    if !INTERNET_CHARGE_TYPES.contains(&charge.as_str()) {
        return Err(ApiError::invalid_value(format!(
            "`InternetAccessible.InternetChargeType` `{charge}` is not one of {}.",
            INTERNET_CHARGE_TYPES.join(", ")
        )));
    }
    let bandwidth = internet.and_then(|i| i.internet_max_bandwidth_out).unwrap_or(0);
    if !(BANDWIDTH_RANGE.0..=BANDWIDTH_RANGE.1).contains(&bandwidth) {
        return Err(ApiError::out_of_range(
            "InternetAccessible.InternetMaxBandwidthOut",
            bandwidth,
            &format!("{} to {} Mbps", BANDWIDTH_RANGE.0, BANDWIDTH_RANGE.1),
        ));
    }
    let public = internet.and_then(|i| i.public_ip_assigned).unwrap_or(bandwidth > 0);
    Ok((
        InternetAccessible {
            internet_charge_type: Some(charge),
            internet_max_bandwidth_out: Some(bandwidth),
            public_ip_assigned: Some(public),
            bandwidth_package_id: internet.and_then(|i| i.bandwidth_package_id.clone()),
        },
        public,
    ))
}

/// Tag key prefixes reserved for the cloud's own tags.
const RESERVED_TAG_PREFIXES: [&str; 3] = ["qcloud", "tencent", "project"];

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
            "InvalidParameterValue.TagQuotaLimitExceeded",
            format!("{} tags were given; an instance may carry at most {MAX_TAGS}.", tags.len()),
        ));
    }
    Ok(tags)
}

fn check_tag(tag: &Tag) -> Result<(), ApiError> {
    if tag.key.is_empty() || tag.key.chars().count() > 127 {
        return Err(ApiError::new(
            "FailedOperation.IllegalTagKey",
            format!("The tag key `{}` must have 1 to 127 characters.", tag.key),
        ));
    }
    let lower = tag.key.to_ascii_lowercase();
    if RESERVED_TAG_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(ApiError::new(
            "FailedOperation.TagKeyReserved",
            format!("The tag key `{}` uses a reserved prefix (qcloud, tencent, project).", tag.key),
        ));
    }
    if tag.value.chars().count() > 255 {
        return Err(ApiError::new(
            "FailedOperation.IllegalTagValue",
            format!("The value of tag `{}` has more than 255 characters.", tag.key),
        ));
    }
    Ok(())
}

/// Checks base64 user data of at most 16 KiB (shared with ModifyInstancesAttribute).
pub(super) fn check_user_data(data: &str) -> Result<(), ApiError> {
    let bad = |why: &str| {
        ApiError::new("InvalidParameterValue.InvalidUserDataFormat", format!("The UserData {why}."))
    };
    if data.len() > MAX_USER_DATA {
        return Err(bad("is larger than 16 KB"));
    }
    base64::engine::general_purpose::STANDARD.decode(data).map_err(|_| bad("is not base64-encoded"))?;
    Ok(())
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
        assert!(check_user_data(&"A".repeat(MAX_USER_DATA + 4)).is_err());
    }
}
