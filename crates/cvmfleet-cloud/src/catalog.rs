//! The emulated world's fixed resources: regions and zones, images, instance types, dedicated
//! hosts, VPCs and subnets, security groups and key pairs.
//!
//! [`Catalog::builtin`] holds every resource the RunInstances reference examples name plus the
//! starter fleet's; a JSON file ([`Catalog::apply_json`], read by the caller) extends or replaces it:
//!
//! ```json
//! { "mode": "extend",
//!   "regions": [{ "region": "ap-singapore", "basic_network": "10.160.0.0/12",
//!                 "zones": [{ "zone": "ap-singapore-1", "zone_id": "900001" }] }],
//!   "instance_types": [{ "instance_type": "S5.SMALL1", "cpu": 1, "memory": 1 }] }
//! ```
//!
//! With `"mode": "extend"` (the default) an entry whose ID matches a built-in one replaces it
//! and the others are added; `"mode": "replace"` starts from an empty catalog.
//!
//! `"stock"` limits offerings ([`crate::stock`]; extended entries apply after the built-in
//! ones) and `"prices"` prices them ([`crate::pricing`]; extended entries replace the built-in
//! ones of the same key). The built-in catalog has unlimited stock and prices every type.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::net::Cidr;
use crate::pricing::PriceTable;
use crate::stock::{Offering, StockSpec};

/// A region with its zones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// Region, e.g. `ap-guangzhou`.
    pub region: String,
    /// Display name.
    #[serde(default)]
    pub region_name: String,
    /// The region's zones.
    pub zones: Vec<ZoneSpec>,
    /// Block that instances without a VPC (the basic network) get their private IPs from.
    pub basic_network: Cidr,
}

/// An availability zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    /// Zone, e.g. `ap-guangzhou-3`.
    pub zone: String,
    /// Numeric ID as a string, e.g. `100003`.
    #[serde(default)]
    pub zone_id: String,
    /// Display name.
    #[serde(default)]
    pub zone_name: String,
    /// Whether the zone sells instances (`AVAILABLE`); unavailable zones refuse RunInstances.
    #[serde(default = "yes")]
    pub available: bool,
}

fn yes() -> bool {
    true
}

/// An image, usable in every region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// `img-` and 8 characters.
    pub image_id: String,
    /// Image name.
    pub image_name: String,
    /// OS name shown on instances.
    pub os_name: String,
    /// Platform, e.g. `CentOS`, `Ubuntu`, `Windows`.
    pub platform: String,
    /// Windows images have stricter password and host name rules and take no key pairs.
    #[serde(default)]
    pub windows: bool,
    /// `PUBLIC_IMAGE`, `PRIVATE_IMAGE`, …
    #[serde(default = "public_image")]
    pub image_type: String,
    /// Size in GiB; the system disk must be at least this large.
    #[serde(default = "twenty")]
    pub image_size: i64,
    /// `x86_64` or `arm`.
    #[serde(default = "x86_64")]
    pub architecture: String,
}

fn public_image() -> String {
    "PUBLIC_IMAGE".into()
}
fn twenty() -> i64 {
    20
}
fn x86_64() -> String {
    "x86_64".into()
}

/// An instance type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeSpec {
    /// e.g. `S5.MEDIUM2`.
    pub instance_type: String,
    /// vCPUs.
    pub cpu: i64,
    /// Memory in GiB.
    pub memory: i64,
    /// GPUs.
    #[serde(default)]
    pub gpu: i64,
    /// FPGAs.
    #[serde(default)]
    pub fpga: i64,
    /// Zones that sell it; empty means every zone.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Sold only to accounts granted access; RunInstances answers `InvalidPermission`.
    #[serde(default)]
    pub requires_permission: bool,
}

impl InstanceTypeSpec {
    /// The family, the part before the dot (`S5` of `S5.MEDIUM2`).
    #[must_use]
    pub fn family(&self) -> &str {
        self.instance_type.split('.').next().unwrap_or_default()
    }

    /// Whether `zone` sells the type.
    #[must_use]
    pub fn sold_in(&self, zone: &str) -> bool {
        self.zones.is_empty() || self.zones.iter().any(|z| z == zone)
    }
}

/// A dedicated (CDH) host with its capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// `host-` and 8 characters.
    pub host_id: String,
    /// Zone the host stands in.
    pub zone: String,
    /// vCPUs it can give to instances.
    pub cpu: i64,
    /// GiB of memory it can give to instances.
    pub memory: i64,
}

/// A VPC with its subnets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcSpec {
    /// `vpc-` and 8 characters.
    pub vpc_id: String,
    /// Region.
    pub region: String,
    /// The VPC's block.
    pub cidr: Cidr,
    /// Subnets, each in one zone.
    #[serde(default)]
    pub subnets: Vec<SubnetSpec>,
}

/// A subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetSpec {
    /// `subnet-` and 8 characters.
    pub subnet_id: String,
    /// Zone.
    pub zone: String,
    /// Block inside the VPC's.
    pub cidr: Cidr,
}

/// A security group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupSpec {
    /// `sg-` and 8 characters.
    pub security_group_id: String,
    /// Region.
    pub region: String,
}

/// An SSH key pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPairSpec {
    /// `skey-` and 8 characters.
    pub key_id: String,
}

/// Every fixed resource of the emulated cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Regions and zones.
    #[serde(default)]
    pub regions: Vec<RegionSpec>,
    /// Images.
    #[serde(default)]
    pub images: Vec<ImageSpec>,
    /// Instance types.
    #[serde(default)]
    pub instance_types: Vec<InstanceTypeSpec>,
    /// Dedicated hosts.
    #[serde(default)]
    pub hosts: Vec<HostSpec>,
    /// VPCs.
    #[serde(default)]
    pub vpcs: Vec<VpcSpec>,
    /// Security groups.
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupSpec>,
    /// Key pairs.
    #[serde(default)]
    pub key_pairs: Vec<KeyPairSpec>,
    /// Block public IPs come from (a benchmarking range by default, never routed).
    #[serde(default = "default_public_pool")]
    pub public_ip_pool: Cidr,
    /// Stock of limited offerings, applied in order; every other offering is unlimited.
    #[serde(default)]
    pub stock: Vec<StockSpec>,
    /// Prices of instances, disks and bandwidth.
    #[serde(default)]
    pub prices: PriceTable,
}

fn default_public_pool() -> Cidr {
    Cidr::literal([198, 18, 0, 0], 15)
}

/// A CIDR from the built-in literal `a.b.c.d/prefix`.
fn cidr(s: &str) -> Cidr {
    let (addr, prefix) = s.split_once('/').unwrap_or((s, "32"));
    let mut octets = [0u8; 4];
    for (slot, part) in octets.iter_mut().zip(addr.split('.')) {
        *slot = part.parse().unwrap_or(0);
    }
    Cidr::literal(octets, prefix.parse().unwrap_or(32))
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::builtin()
    }
}

/// A catalog file could not be read or is inconsistent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The file is not a catalog.
    #[error("catalog {} is not valid", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// `mode` is neither `extend` nor `replace`.
    #[error("catalog mode must be `extend` or `replace`, not `{0}`")]
    Mode(String),
    /// The resources contradict each other.
    #[error("inconsistent catalog: {0}")]
    Inconsistent(String),
}

fn zone(zone: &str, id: &str, name: &str) -> ZoneSpec {
    ZoneSpec { zone: zone.into(), zone_id: id.into(), zone_name: name.into(), available: true }
}

fn image(id: &str, name: &str, platform: &str, windows: bool, size: i64) -> ImageSpec {
    ImageSpec {
        image_id: id.into(),
        image_name: name.into(),
        os_name: name.into(),
        platform: platform.into(),
        windows,
        image_type: public_image(),
        image_size: size,
        architecture: x86_64(),
    }
}

fn itype(name: &str, cpu: i64, memory: i64) -> InstanceTypeSpec {
    InstanceTypeSpec {
        instance_type: name.into(),
        cpu,
        memory,
        gpu: 0,
        fpga: 0,
        zones: Vec::new(),
        requires_permission: false,
    }
}

fn subnet(id: &str, zone: &str, block: &str) -> SubnetSpec {
    SubnetSpec { subnet_id: id.into(), zone: zone.into(), cidr: cidr(block) }
}

impl Catalog {
    /// The built-in world: every resource of the RunInstances reference examples (regions
    /// `ap-guangzhou` and `ap-hongkong`, images `img-pmqg1cw7` and `img-dkwyg6sr`, types
    /// `S1.SMALL1`, `S1.SMALL2`, `S2.SMALL1`, `S5.16XLARGE256` (the InquiryPriceRunInstances
    /// examples), CDH host `host-q88gab4i`, `vpc-1urkhbj4` /
    /// `subnet-dcs9x3gz` holding 10.0.0.18 and .19) and the starter fleet's (`vpc-2zxc8w1p` with
    /// `subnet-g3a1x7k2` and `subnet-h4b2y8m3`, `sg-5ld3mz1q`, `skey-3glfot13`).
    #[must_use]
    pub fn builtin() -> Self {
        let mut gpu = itype("GN10X.2XLARGE40", 8, 40);
        gpu.gpu = 1;
        gpu.zones = vec!["ap-guangzhou-3".into()];
        gpu.requires_permission = true;
        let mut s6 = itype("S6.MEDIUM4", 2, 4);
        s6.zones = vec!["ap-guangzhou-6".into(), "ap-guangzhou-7".into()];
        let mut catalog = Catalog {
            regions: vec![
                RegionSpec {
                    region: "ap-guangzhou".into(),
                    region_name: "华南地区(广州)".into(),
                    zones: vec![
                        zone("ap-guangzhou-2", "100002", "广州二区"),
                        zone("ap-guangzhou-3", "100003", "广州三区"),
                        zone("ap-guangzhou-4", "100004", "广州四区"),
                        zone("ap-guangzhou-6", "100006", "广州六区"),
                        zone("ap-guangzhou-7", "100007", "广州七区"),
                    ],
                    basic_network: cidr("10.128.0.0/12"),
                },
                RegionSpec {
                    region: "ap-hongkong".into(),
                    region_name: "港澳台地区(中国香港)".into(),
                    zones: vec![
                        zone("ap-hongkong-1", "300001", "香港一区"),
                        zone("ap-hongkong-2", "300002", "香港二区"),
                    ],
                    basic_network: cidr("10.144.0.0/12"),
                },
                RegionSpec {
                    region: "ap-shanghai".into(),
                    region_name: "华东地区(上海)".into(),
                    zones: vec![
                        zone("ap-shanghai-2", "200002", "上海二区"),
                        zone("ap-shanghai-4", "200004", "上海四区"),
                        zone("ap-shanghai-5", "200005", "上海五区"),
                    ],
                    basic_network: cidr("10.160.0.0/12"),
                },
            ],
            images: vec![
                image("img-pmqg1cw7", "CentOS 7.9 64位", "CentOS", false, 20),
                image("img-dkwyg6sr", "Ubuntu Server 22.04 LTS 64位", "Ubuntu", false, 20),
                image("img-8toqc6s3", "TencentOS Server 3.1 (TK4)", "TencentOS", false, 20),
                image("img-487zeit5", "Ubuntu Server 20.04 LTS 64位", "Ubuntu", false, 20),
                image("img-9qrfy1xt", "Windows Server 2022 数据中心版 64位中文版", "Windows", true, 50),
            ],
            instance_types: vec![
                itype("S1.SMALL1", 1, 1),
                itype("S1.SMALL2", 1, 2),
                itype("S1.SMALL4", 1, 4),
                itype("S1.MEDIUM2", 2, 2),
                itype("S1.MEDIUM4", 2, 4),
                itype("S2.SMALL1", 1, 1),
                itype("S2.SMALL2", 1, 2),
                itype("S2.MEDIUM4", 2, 4),
                itype("S2.LARGE8", 4, 8),
                itype("S5.SMALL2", 1, 2),
                itype("S5.MEDIUM2", 2, 2),
                itype("S5.MEDIUM4", 2, 4),
                itype("S5.LARGE8", 4, 8),
                itype("S5.LARGE16", 4, 16),
                itype("S5.2XLARGE16", 8, 16),
                itype("S5.2XLARGE32", 8, 32),
                itype("S5.16XLARGE256", 64, 256),
                itype("SA2.MEDIUM4", 2, 4),
                itype("SA2.LARGE8", 4, 8),
                s6,
                gpu,
            ],
            hosts: vec![
                HostSpec {
                    host_id: "host-q88gab4i".into(),
                    zone: "ap-guangzhou-2".into(),
                    cpu: 32,
                    memory: 128,
                },
                HostSpec {
                    host_id: "host-3e8v7a0d".into(),
                    zone: "ap-guangzhou-3".into(),
                    cpu: 4,
                    memory: 8,
                },
            ],
            vpcs: vec![
                VpcSpec {
                    vpc_id: "vpc-1urkhbj4".into(),
                    region: "ap-hongkong".into(),
                    cidr: cidr("10.0.0.0/16"),
                    subnets: vec![
                        subnet("subnet-dcs9x3gz", "ap-hongkong-1", "10.0.0.0/24"),
                        subnet("subnet-k2m9q4vd", "ap-hongkong-2", "10.0.1.0/24"),
                    ],
                },
                VpcSpec {
                    vpc_id: "vpc-2zxc8w1p".into(),
                    region: "ap-guangzhou".into(),
                    cidr: cidr("10.0.0.0/16"),
                    subnets: vec![
                        subnet("subnet-f2c0w6j1", "ap-guangzhou-2", "10.0.0.0/24"),
                        subnet("subnet-g3a1x7k2", "ap-guangzhou-3", "10.0.1.0/24"),
                        subnet("subnet-h4b2y8m3", "ap-guangzhou-4", "10.0.2.0/24"),
                    ],
                },
            ],
            security_groups: vec![
                SecurityGroupSpec { security_group_id: "sg-5ld3mz1q".into(), region: "ap-guangzhou".into() },
                SecurityGroupSpec { security_group_id: "sg-p1ezv4wz".into(), region: "ap-guangzhou".into() },
                SecurityGroupSpec { security_group_id: "sg-7hk2a9bq".into(), region: "ap-hongkong".into() },
            ],
            key_pairs: vec![
                KeyPairSpec { key_id: "skey-3glfot13".into() },
                KeyPairSpec { key_id: "skey-b4vakk62".into() },
            ],
            public_ip_pool: default_public_pool(),
            stock: Vec::new(),
            prices: PriceTable::default(),
        };
        let regions: Vec<&str> = catalog.regions.iter().map(|r| r.region.as_str()).collect();
        catalog.prices = PriceTable::builtin(&catalog.instance_types, &regions);
        catalog
    }

    /// An empty catalog (no regions at all), for building one from scratch.
    #[must_use]
    pub fn empty() -> Self {
        Catalog {
            regions: Vec::new(),
            images: Vec::new(),
            instance_types: Vec::new(),
            hosts: Vec::new(),
            vpcs: Vec::new(),
            security_groups: Vec::new(),
            key_pairs: Vec::new(),
            public_ip_pool: default_public_pool(),
            stock: Vec::new(),
            prices: PriceTable::default(),
        }
    }

    /// Applies a catalog document (JSON text) to `self`: extends it, or replaces it when the
    /// document says `"mode": "replace"`. The result is checked for consistency.
    ///
    /// # Errors
    /// [`CatalogError`] when the text is not a catalog, the mode is unknown, or the result is
    /// inconsistent.
    pub fn apply_json(self, text: &str, origin: &Path) -> Result<Catalog, CatalogError> {
        let parse = |source| CatalogError::Parse { path: origin.to_owned(), source };
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(parse)?;
        let mode = match value.as_object_mut().and_then(|o| o.remove("mode")) {
            None => "extend".to_owned(),
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
        };
        let has_pool = value.get("public_ip_pool").is_some();
        let file: Catalog = serde_json::from_value(value).map_err(parse)?;
        let merged = match mode.as_str() {
            "replace" => file,
            "extend" => self.extend(file, has_pool),
            other => return Err(CatalogError::Mode(other.to_owned())),
        };
        merged.validate()?;
        Ok(merged)
    }

    fn extend(mut self, other: Catalog, take_pool: bool) -> Catalog {
        fn merge<T>(base: &mut Vec<T>, extra: Vec<T>, key: impl Fn(&T) -> &str) {
            for item in extra {
                match base.iter().position(|b| key(b) == key(&item)) {
                    Some(i) => base[i] = item,
                    None => base.push(item),
                }
            }
        }
        merge(&mut self.regions, other.regions, |r| &r.region);
        merge(&mut self.images, other.images, |i| &i.image_id);
        merge(&mut self.instance_types, other.instance_types, |t| &t.instance_type);
        merge(&mut self.hosts, other.hosts, |h| &h.host_id);
        merge(&mut self.vpcs, other.vpcs, |v| &v.vpc_id);
        merge(&mut self.security_groups, other.security_groups, |s| &s.security_group_id);
        merge(&mut self.key_pairs, other.key_pairs, |k| &k.key_id);
        if take_pool {
            self.public_ip_pool = other.public_ip_pool;
        }
        self.stock.extend(other.stock);
        self.prices.extend(other.prices);
        self
    }

    /// Checks that IDs are unique and references point at existing regions and zones.
    ///
    /// # Errors
    /// [`CatalogError::Inconsistent`] naming the first problem.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let bad = |m: String| Err(CatalogError::Inconsistent(m));
        let mut seen = BTreeSet::new();
        let mut zone_region = HashMap::new();
        for r in &self.regions {
            if !seen.insert(r.region.clone()) {
                return bad(format!("region `{}` appears twice", r.region));
            }
            for z in &r.zones {
                if zone_region.insert(z.zone.clone(), r.region.clone()).is_some() {
                    return bad(format!("zone `{}` appears twice", z.zone));
                }
            }
        }
        let unique = |what: &str, ids: Vec<&str>| -> Result<(), CatalogError> {
            let mut seen = BTreeSet::new();
            for id in ids {
                if !seen.insert(id) {
                    return Err(CatalogError::Inconsistent(format!("{what} `{id}` appears twice")));
                }
            }
            Ok(())
        };
        unique("image", self.images.iter().map(|i| i.image_id.as_str()).collect())?;
        unique("instance type", self.instance_types.iter().map(|t| t.instance_type.as_str()).collect())?;
        unique("host", self.hosts.iter().map(|h| h.host_id.as_str()).collect())?;
        unique("vpc", self.vpcs.iter().map(|v| v.vpc_id.as_str()).collect())?;
        unique(
            "subnet",
            self.vpcs.iter().flat_map(|v| v.subnets.iter().map(|s| s.subnet_id.as_str())).collect(),
        )?;
        unique(
            "security group",
            self.security_groups.iter().map(|s| s.security_group_id.as_str()).collect(),
        )?;
        unique("key pair", self.key_pairs.iter().map(|k| k.key_id.as_str()).collect())?;
        for t in &self.instance_types {
            if crate::names::instance_type_shape(&t.instance_type)
                != Some(crate::names::InstanceTypeShape::Standard)
            {
                return bad(format!("instance type `{}` is not of the form FAMILY.SIZE", t.instance_type));
            }
            if let Some(z) = t.zones.iter().find(|z| !zone_region.contains_key(*z)) {
                return bad(format!("instance type `{}` names unknown zone `{z}`", t.instance_type));
            }
        }
        for h in &self.hosts {
            if !zone_region.contains_key(&h.zone) {
                return bad(format!("host `{}` is in unknown zone `{}`", h.host_id, h.zone));
            }
        }
        for v in &self.vpcs {
            if !seen.contains(&v.region) {
                return bad(format!("vpc `{}` is in unknown region `{}`", v.vpc_id, v.region));
            }
            for s in &v.subnets {
                if zone_region.get(&s.zone) != Some(&v.region) {
                    return bad(format!(
                        "subnet `{}` is in zone `{}`, not in region `{}`",
                        s.subnet_id, s.zone, v.region
                    ));
                }
                if !v.cidr.contains(s.cidr.network()) || s.cidr.size() > v.cidr.size() {
                    return bad(format!(
                        "subnet `{}` block {} is not inside {}",
                        s.subnet_id, s.cidr, v.cidr
                    ));
                }
            }
        }
        for sg in &self.security_groups {
            if !seen.contains(&sg.region) {
                return bad(format!(
                    "security group `{}` is in unknown region `{}`",
                    sg.security_group_id, sg.region
                ));
            }
        }
        for entry in &self.stock {
            let sold = self
                .instance_types
                .iter()
                .any(|t| t.instance_type == entry.instance_type && t.sold_in(&entry.zone));
            entry.check(zone_region.contains_key(&entry.zone), sold).map_err(CatalogError::Inconsistent)?;
        }
        self.prices
            .validate(|t| self.instance_types.iter().any(|s| s.instance_type == t), |r| seen.contains(r))
            .map_err(CatalogError::Inconsistent)?;
        Ok(())
    }
}

/// Lookups into a validated catalog.
#[derive(Debug)]
pub struct CatalogIndex {
    pub(crate) catalog: Catalog,
    zone_region: HashMap<String, String>,
    images: HashMap<String, usize>,
    types: HashMap<String, usize>,
    hosts: HashMap<String, usize>,
    vpcs: HashMap<String, usize>,
    subnets: HashMap<String, (usize, usize)>,
    security_groups: HashMap<String, usize>,
    key_pairs: BTreeSet<String>,
    /// The catalog's stock, per offering (`None`: set back to unlimited).
    stock: HashMap<Offering, Option<u64>>,
}

impl CatalogIndex {
    /// Indexes a catalog (validate it first: [`Catalog::validate`]).
    #[must_use]
    pub fn new(catalog: Catalog) -> Self {
        let mut zone_region = HashMap::new();
        for r in &catalog.regions {
            for z in &r.zones {
                zone_region.insert(z.zone.clone(), r.region.clone());
            }
        }
        let positions =
            |ids: Vec<&String>| ids.into_iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
        let mut subnets = HashMap::new();
        for (vi, v) in catalog.vpcs.iter().enumerate() {
            for (si, s) in v.subnets.iter().enumerate() {
                subnets.insert(s.subnet_id.clone(), (vi, si));
            }
        }
        CatalogIndex {
            zone_region,
            images: positions(catalog.images.iter().map(|i| &i.image_id).collect()),
            types: positions(catalog.instance_types.iter().map(|t| &t.instance_type).collect()),
            hosts: positions(catalog.hosts.iter().map(|h| &h.host_id).collect()),
            vpcs: positions(catalog.vpcs.iter().map(|v| &v.vpc_id).collect()),
            subnets,
            security_groups: positions(
                catalog.security_groups.iter().map(|s| &s.security_group_id).collect(),
            ),
            key_pairs: catalog.key_pairs.iter().map(|k| k.key_id.clone()).collect(),
            stock: catalog
                .stock
                .iter()
                .flat_map(|e| e.offerings().unwrap_or_default().into_iter().map(|o| (o, e.available)))
                .collect(),
            catalog,
        }
    }

    /// The catalog's stock of an offering: `None` when unlimited.
    pub(crate) fn stock(&self, offering: &Offering) -> Option<u64> {
        self.stock.get(offering).copied().flatten()
    }

    /// The offerings the catalog limits.
    pub(crate) fn limited(&self) -> impl Iterator<Item = (&Offering, u64)> {
        self.stock.iter().filter_map(|(o, n)| n.map(|n| (o, n)))
    }

    /// A region of the catalog.
    #[must_use]
    pub fn region(&self, region: &str) -> Option<&RegionSpec> {
        self.catalog.regions.iter().find(|r| r.region == region)
    }

    pub(crate) fn zone_region(&self, zone: &str) -> Option<&str> {
        self.zone_region.get(zone).map(String::as_str)
    }

    pub(crate) fn zone(&self, zone: &str) -> Option<&ZoneSpec> {
        let region = self.zone_region(zone)?;
        self.region(region)?.zones.iter().find(|z| z.zone == zone)
    }

    pub(crate) fn image(&self, id: &str) -> Option<&ImageSpec> {
        self.images.get(id).map(|&i| &self.catalog.images[i])
    }

    pub(crate) fn instance_type(&self, name: &str) -> Option<&InstanceTypeSpec> {
        self.types.get(name).map(|&i| &self.catalog.instance_types[i])
    }

    pub(crate) fn host(&self, id: &str) -> Option<&HostSpec> {
        self.hosts.get(id).map(|&i| &self.catalog.hosts[i])
    }

    pub(crate) fn vpc(&self, id: &str) -> Option<&VpcSpec> {
        self.vpcs.get(id).map(|&i| &self.catalog.vpcs[i])
    }

    /// The subnet and the VPC it belongs to.
    pub(crate) fn subnet(&self, id: &str) -> Option<(&VpcSpec, &SubnetSpec)> {
        self.subnets.get(id).map(|&(v, s)| (&self.catalog.vpcs[v], &self.catalog.vpcs[v].subnets[s]))
    }

    pub(crate) fn security_group(&self, id: &str) -> Option<&SecurityGroupSpec> {
        self.security_groups.get(id).map(|&i| &self.catalog.security_groups[i])
    }

    pub(crate) fn has_key_pair(&self, id: &str) -> bool {
        self.key_pairs.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_consistent_and_holds_the_seed_resources() {
        let c = Catalog::builtin();
        c.validate().unwrap();
        let idx = CatalogIndex::new(c);
        assert_eq!(idx.zone_region("ap-guangzhou-2"), Some("ap-guangzhou"));
        assert_eq!(idx.zone_region("ap-hongkong-1"), Some("ap-hongkong"));
        for image in ["img-pmqg1cw7", "img-dkwyg6sr"] {
            assert!(idx.image(image).is_some(), "{image}");
        }
        for t in ["S1.SMALL1", "S1.SMALL2", "S2.SMALL1", "S5.MEDIUM2", "S5.LARGE8"] {
            assert!(idx.instance_type(t).is_some(), "{t}");
        }
        assert_eq!(idx.host("host-q88gab4i").map(|h| h.zone.as_str()), Some("ap-guangzhou-2"));
        let (vpc, subnet) = idx.subnet("subnet-dcs9x3gz").unwrap();
        assert_eq!(vpc.vpc_id, "vpc-1urkhbj4");
        assert!(subnet.cidr.contains(crate::net::parse_ipv4("10.0.0.19").unwrap()));
        let (vpc, subnet) = idx.subnet("subnet-h4b2y8m3").unwrap();
        assert_eq!((vpc.vpc_id.as_str(), subnet.zone.as_str()), ("vpc-2zxc8w1p", "ap-guangzhou-4"));
        assert!(idx.security_group("sg-5ld3mz1q").is_some());
        assert!(idx.has_key_pair("skey-3glfot13"));
    }

    #[test]
    fn files_extend_or_replace() {
        let extend = r#"{"instance_types":[{"instance_type":"S1.SMALL1","cpu":9,"memory":9},
            {"instance_type":"X9.HUGE","cpu":64,"memory":256}]}"#;
        let c = Catalog::builtin().apply_json(extend, Path::new("x.json")).unwrap();
        let idx = CatalogIndex::new(c);
        assert_eq!(idx.instance_type("S1.SMALL1").map(|t| t.cpu), Some(9));
        assert!(idx.instance_type("X9.HUGE").is_some());
        assert!(idx.image("img-pmqg1cw7").is_some());

        let replace = r#"{"mode":"replace","regions":[{"region":"r-1","basic_network":"10.0.0.0/8",
            "zones":[{"zone":"r-1-a"}]}]}"#;
        let c = Catalog::builtin().apply_json(replace, Path::new("x.json")).unwrap();
        assert_eq!(c.regions.len(), 1);
        assert!(c.images.is_empty());

        for (text, needle) in [
            (r#"{"mode":"merge"}"#, "mode"),
            (r#"{"regionz":[]}"#, "not valid"),
            (r#"{"hosts":[{"host_id":"host-x","zone":"nowhere","cpu":1,"memory":1}]}"#, "unknown zone"),
            (r#"{"instance_types":[{"instance_type":"bad","cpu":1,"memory":1}]}"#, "FAMILY.SIZE"),
            (r#"{"stock":[{"zone":"nowhere","instance_type":"S5.MEDIUM2","available":1}]}"#, "unknown zone"),
            (
                r#"{"stock":[{"zone":"ap-guangzhou-3","instance_type":"S6.MEDIUM4","available":1}]}"#,
                "does not sell",
            ),
            (
                r#"{"prices":{"instances":[{"instance_type":"X1.A","charge_type":"PREPAID","price":1}]}}"#,
                "unknown instance type",
            ),
            (
                r#"{"prices":{"disks":[{"disk_type":"FLOPPY","hourly_per_gib":1,"monthly_per_gib":1}]}}"#,
                "FLOPPY",
            ),
        ] {
            let err = Catalog::builtin().apply_json(text, Path::new("x.json")).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
