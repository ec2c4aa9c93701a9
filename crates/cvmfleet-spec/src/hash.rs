//! Canonical hashing of launch templates.
//!
//! The canonical form is the template's API JSON with API defaults removed (so writing a default
//! out changes nothing), empty mappings dropped and keys sorted, serialized compactly. Formatting,
//! key order, comments and explicit defaults therefore never change a hash; any value that
//! reaches the API does. Password references are hashed as references (`{fromEnv: VAR}`); secret
//! values are never read.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A SHA-256 over a template's canonical form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateHash([u8; 32]);

impl TemplateHash {
    /// The first 16 hex digits, short enough for a tag value or a ClientToken part.
    #[must_use]
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }

    /// The raw digest.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn of(domain: &str, canonical: &str) -> TemplateHash {
        let mut hasher = Sha256::new();
        hasher.update(domain.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.as_bytes());
        TemplateHash(hasher.finalize().into())
    }
}

impl fmt::Display for TemplateHash {
    /// 64 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TemplateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TemplateHash({self})")
    }
}

impl Serialize for TemplateHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Removes `key` from `map` when it holds `default`.
fn drop_default(map: &mut Map<String, Value>, key: &str, default: &Value) {
    if map.get(key) == Some(default) {
        map.remove(key);
    }
}

fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// Drops the API's unconditional defaults from a template's JSON (only those the API documents
/// as fixed; defaults that depend on the image or stock, such as EnhancedService or
/// SystemDisk.DiskType, are kept as written).
pub(crate) fn strip_defaults(template: &mut Value) {
    let Some(t) = template.as_object_mut() else {
        return;
    };
    drop_default(t, "InstanceChargeType", &Value::from("POSTPAID_BY_HOUR"));
    drop_default(t, "DisableApiTermination", &Value::Bool(false));
    if let Some(p) = object(t, "InstanceChargePrepaid") {
        drop_default(p, "RenewFlag", &Value::from("NOTIFY_AND_MANUAL_RENEW"));
    }
    if let Some(p) = object(t, "Placement") {
        drop_default(p, "ProjectId", &Value::from(0));
    }
    if let Some(d) = object(t, "SystemDisk") {
        drop_default(d, "DiskSize", &Value::from(50));
    }
    if let Some(disks) = t.get_mut("DataDisks").and_then(Value::as_array_mut) {
        for disk in disks.iter_mut().filter_map(Value::as_object_mut) {
            drop_default(disk, "DiskType", &Value::from("LOCAL_BASIC"));
            drop_default(disk, "DeleteWithInstance", &Value::Bool(true));
            drop_default(disk, "Encrypt", &Value::Bool(false));
        }
    }
    if let Some(v) = object(t, "VirtualPrivateCloud") {
        drop_default(v, "AsVpcGateway", &Value::Bool(false));
    }
    if let Some(i) = object(t, "InternetAccessible") {
        drop_default(i, "InternetMaxBandwidthOut", &Value::from(0));
        // A public IP is assigned by default exactly when there is bandwidth.
        let has_bandwidth = i.get("InternetMaxBandwidthOut").and_then(Value::as_u64).unwrap_or(0) > 0;
        drop_default(i, "PublicIpAssigned", &Value::Bool(has_bandwidth));
    }
    if let Some(l) = object(t, "LoginSettings") {
        drop_default(l, "KeepImageLogin", &Value::from("false"));
    }
    drop_empty(template);
}

/// Removes empty mappings (recursively), which mean the same as an absent field.
fn drop_empty(value: &mut Value) {
    if let Value::Object(map) = value {
        for v in map.values_mut() {
            drop_empty(v);
        }
        map.retain(|_, v| !matches!(v, Value::Object(m) if m.is_empty()));
    } else if let Value::Array(items) = value {
        items.iter_mut().for_each(drop_empty);
    }
}

/// Compact JSON with keys sorted at every level.
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_json_sorts_keys() {
        let v = json!({"b": 1, "a": {"d": [2, {"z": 1, "y": 2}], "c": "x"}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":"x","d":[2,{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn defaults_and_empty_mappings_are_dropped() {
        let mut v = json!({
            "InstanceChargeType": "POSTPAID_BY_HOUR",
            "Placement": {"ProjectId": 0},
            "InternetAccessible": {"InternetMaxBandwidthOut": 10, "PublicIpAssigned": true},
            "ImageId": "img-pmqg1cw7"
        });
        strip_defaults(&mut v);
        assert_eq!(
            v,
            json!({"InternetAccessible": {"InternetMaxBandwidthOut": 10}, "ImageId": "img-pmqg1cw7"})
        );
    }

    #[test]
    fn hash_displays_as_hex() {
        let h = TemplateHash::of("d", "{}");
        assert_eq!(h.to_string().len(), 64);
        assert_eq!(h.short().len(), 16);
        assert!(h.to_string().starts_with(&h.short()));
    }
}
