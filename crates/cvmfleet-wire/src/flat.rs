//! The flattened parameter form used by GET requests and v1 signatures:
//! `Placement.Zone=ap-guangzhou-2`, `DataDisks.0.DiskSize=100`, `InstanceIds.0=ins-…`.
//! List indices are 0-based (API 3.0; the pre-3.0 API was 1-based).
//!
//! [`flatten`] turns a JSON body into pairs; [`from_pairs`] turns pairs back into a typed request,
//! reading numbers and booleans out of strings as the service does (`TRUE`, `true`, `1`).

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::Value;

/// Characters that RFC 3986 leaves unescaped; everything else is `%XY` with upper-case hex.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a parameter name or value (RFC 3986, upper-case hex, UTF-8).
#[must_use]
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Joins pairs into a query string, each name and value percent-encoded, in the given order.
#[must_use]
pub fn encode_query(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
    }
    out
}

/// Flattens a serializable request into `(name, value)` pairs, in field order.
///
/// Booleans become `true`/`false`, numbers their decimal form; `null`, empty lists and empty
/// objects produce no pair.
#[must_use]
pub fn flatten<T: Serialize>(request: &T) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(value) = serde_json::to_value(request) {
        flatten_into(&mut out, String::new(), &value);
    }
    out
}

fn flatten_into(out: &mut Vec<(String, String)>, prefix: String, value: &Value) {
    let join = |key: &str| if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") };
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push((prefix, b.to_string())),
        Value::Number(n) => out.push((prefix, n.to_string())),
        Value::String(s) => out.push((prefix, s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_into(out, join(&i.to_string()), item);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                flatten_into(out, join(k), v);
            }
        }
    }
}

/// Why flattened parameters could not be read into a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlatError {
    /// A parameter name is not part of the request.
    #[error("unknown parameter `{0}`")]
    Unknown(String),
    /// The same name appears twice, or a name is used both as a value and as a prefix.
    #[error("parameter `{0}` is given more than once or conflicts with another")]
    Conflict(String),
    /// A value has the wrong type or an index is not contiguous.
    #[error("{0}")]
    Invalid(String),
}

impl de::Error for FlatError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        let msg = msg.to_string();
        match msg.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next()) {
            Some(field) => FlatError::Unknown(field.to_owned()),
            None => FlatError::Invalid(msg),
        }
    }
}

/// A node of the parameter tree; lists are maps keyed by index until read.
#[derive(Debug)]
enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

/// Reads flattened pairs into a typed request.
///
/// # Errors
/// [`FlatError::Unknown`] for a parameter the request does not have, [`FlatError::Conflict`]
/// for repeated names, [`FlatError::Invalid`] for values of the wrong type.
pub fn from_pairs<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, FlatError> {
    let mut root = BTreeMap::new();
    for (name, value) in pairs {
        insert(&mut root, name, value.clone())?;
    }
    T::deserialize(NodeDe { node: Node::Branch(root), path: String::new() })
}

fn insert(root: &mut BTreeMap<String, Node>, name: &str, value: String) -> Result<(), FlatError> {
    let conflict = || FlatError::Conflict(name.to_owned());
    let mut segments = name.split('.').peekable();
    let mut map = root;
    while let Some(segment) = segments.next() {
        if segment.is_empty() {
            return Err(FlatError::Invalid(format!("malformed parameter name `{name}`")));
        }
        if segments.peek().is_none() {
            return match map.entry(segment.to_owned()) {
                std::collections::btree_map::Entry::Occupied(_) => Err(conflict()),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(Node::Leaf(value));
                    Ok(())
                }
            };
        }
        let child = map.entry(segment.to_owned()).or_insert_with(|| Node::Branch(BTreeMap::new()));
        map = match child {
            Node::Branch(inner) => inner,
            Node::Leaf(_) => return Err(conflict()),
        };
    }
    Err(FlatError::Invalid(format!("malformed parameter name `{name}`")))
}

struct NodeDe {
    node: Node,
    path: String,
}

impl NodeDe {
    fn leaf(&self) -> Result<&str, FlatError> {
        match &self.node {
            Node::Leaf(s) => Ok(s),
            Node::Branch(_) => Err(FlatError::Invalid(format!("`{}` must be a single value", self.path))),
        }
    }

    fn invalid(&self, expected: &str) -> FlatError {
        let got = match &self.node {
            Node::Leaf(s) => format!("`{s}`"),
            Node::Branch(_) => "a structure".to_owned(),
        };
        FlatError::Invalid(format!("`{}` must be {expected}, got {got}", self.path))
    }

    /// The node's children in list order; indices must be 0..n without gaps.
    fn into_list(self) -> Result<Vec<NodeDe>, FlatError> {
        let Node::Branch(children) = self.node else {
            return Err(FlatError::Invalid(format!(
                "`{}` must be a list (`{}.0`, `{}.1`, …)",
                self.path, self.path, self.path
            )));
        };
        let mut indexed = Vec::with_capacity(children.len());
        for (k, v) in children {
            let index: usize = k.parse().map_err(|_| {
                FlatError::Invalid(format!("`{}.{k}`: list index must be a number", self.path))
            })?;
            indexed.push((index, k, v));
        }
        indexed.sort_by_key(|(i, _, _)| *i);
        let mut out = Vec::with_capacity(indexed.len());
        for (expected, (index, key, node)) in indexed.into_iter().enumerate() {
            if index != expected {
                return Err(FlatError::Invalid(format!(
                    "`{}`: list indices must start at 0 without gaps",
                    self.path
                )));
            }
            out.push(NodeDe { node, path: format!("{}.{key}", self.path) });
        }
        Ok(out)
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "TRUE" | "True" | "1" => Some(true),
        "false" | "FALSE" | "False" | "0" => Some(false),
        _ => None,
    }
}

macro_rules! parse_number {
    ($($method:ident => $visit:ident : $ty:ty,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatError> {
                let parsed = self.leaf()?.trim().parse::<$ty>().map_err(|_| self.invalid("a number"))?;
                visitor.$visit(parsed)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for NodeDe {
    type Error = FlatError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatError> {
        match self.node {
            Node::Leaf(s) => visitor.visit_string(s),
            Node::Branch(_) => self.deserialize_map(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatError> {
        let b = parse_bool(self.leaf()?).ok_or_else(|| self.invalid("true or false"))?;
        visitor.visit_bool(b)
    }

    parse_number! {
        deserialize_i8 => visit_i64: i64,
        deserialize_i16 => visit_i64: i64,
        deserialize_i32 => visit_i64: i64,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u64: u64,
        deserialize_u16 => visit_u64: u64,
        deserialize_u32 => visit_u64: u64,
        deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f64: f64,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatError> {
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatError> {
        let items = self.into_list()?;
        visitor.visit_seq(de::value::SeqDeserializer::new(items.into_iter()))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatError> {
        let Node::Branch(children) = self.node else {
            return Err(self.invalid("a structure"));
        };
        let path = self.path;
        let entries = children.into_iter().map(move |(k, node)| {
            let child_path = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            (k, NodeDe { node, path: child_path })
        });
        visitor.visit_map(de::value::MapDeserializer::new(entries))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FlatError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FlatError> {
        let s = self.leaf()?.to_owned();
        visitor.visit_enum(s.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct newtype_struct tuple tuple_struct identifier
        ignored_any i128 u128
    }
}

impl<'de> IntoDeserializer<'de, FlatError> for NodeDe {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DescribeInstancesRequest, RunInstancesRequest};

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes()).into_owned().collect()
    }

    #[test]
    fn seed_example_5_reads_back() {
        let req: RunInstancesRequest = from_pairs(&pairs(
            "InstanceType=S1.SMALL2&SystemDisk.DiskType=CLOUD_BASIC&SystemDisk.DiskSize=50&Placement.Zone=ap-hongkong-1\
             &ImageId=img-dkwyg6sr&VirtualPrivateCloud.SubnetId=subnet-dcs9x3gz&VirtualPrivateCloud.VpcId=vpc-1urkhbj4\
             &VirtualPrivateCloud.PrivateIpAddresses.0=10.0.0.18&VirtualPrivateCloud.PrivateIpAddresses.1=10.0.0.19&InstanceCount=2",
        ))
        .unwrap();
        assert_eq!(req.instance_count, Some(2));
        let vpc = req.virtual_private_cloud.as_ref().unwrap();
        assert_eq!(
            vpc.private_ip_addresses.as_deref(),
            Some(&["10.0.0.18".to_owned(), "10.0.0.19".to_owned()][..])
        );
        assert_eq!(req.system_disk.unwrap().disk_size, Some(50));
    }

    #[test]
    fn upper_case_booleans_are_read() {
        let req: RunInstancesRequest = from_pairs(&pairs(
            "InternetAccessible.PublicIpAssigned=TRUE&EnhancedService.SecurityService.Enabled=TRUE&DryRun=false",
        ))
        .unwrap();
        assert_eq!(req.internet_accessible.unwrap().public_ip_assigned, Some(true));
        assert_eq!(req.dry_run, Some(false));
    }

    #[test]
    fn flatten_then_read_is_identity() {
        let req: RunInstancesRequest = from_pairs(&pairs(
            "Placement.Zone=ap-guangzhou-2&Placement.HostIds.0=host-q88gab4i&InstanceChargeType=CDHPAID\
             &DataDisks.0.DiskType=LOCAL_BASIC&DataDisks.0.DiskSize=100&TagSpecification.0.ResourceType=instance\
             &TagSpecification.0.Tags.0.Key=k&TagSpecification.0.Tags.0.Value=v",
        ))
        .unwrap();
        let flat = flatten(&req);
        assert!(flat.contains(&("Placement.HostIds.0".into(), "host-q88gab4i".into())));
        assert!(flat.contains(&("TagSpecification.0.Tags.0.Value".into(), "v".into())));
        let again: RunInstancesRequest = from_pairs(&flat).unwrap();
        assert_eq!(again, req);
    }

    #[test]
    fn errors_name_the_parameter() {
        let err = from_pairs::<RunInstancesRequest>(&pairs("Bogus=1")).unwrap_err();
        assert_eq!(err, FlatError::Unknown("Bogus".into()));
        let err = from_pairs::<RunInstancesRequest>(&pairs("InstanceCount=two")).unwrap_err();
        assert_eq!(err.to_string(), "`InstanceCount` must be a number, got `two`");
        let err = from_pairs::<DescribeInstancesRequest>(&pairs("InstanceIds.1=ins-a")).unwrap_err();
        assert!(err.to_string().contains("start at 0"), "{err}");
        let err = from_pairs::<RunInstancesRequest>(&pairs("ImageId=a&ImageId=b")).unwrap_err();
        assert_eq!(err, FlatError::Conflict("ImageId".into()));
        let err = from_pairs::<RunInstancesRequest>(&pairs("Placement=a&Placement.Zone=b")).unwrap_err();
        assert_eq!(err, FlatError::Conflict("Placement.Zone".into()));
        assert!(from_pairs::<RunInstancesRequest>(&pairs("a..b=1")).is_err());
    }

    #[test]
    fn percent_encoding_is_rfc3986_upper_case() {
        assert_eq!(percent_encode("EliP9YW3pW28FpsEdkXt/+WcGeI="), "EliP9YW3pW28FpsEdkXt%2F%2BWcGeI%3D");
        assert_eq!(percent_encode("未命名"), "%E6%9C%AA%E5%91%BD%E5%90%8D");
        assert_eq!(percent_encode("a-b_c.d~e f"), "a-b_c.d~e%20f");
    }
}
