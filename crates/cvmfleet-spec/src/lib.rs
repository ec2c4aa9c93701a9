//! The cvmfleet fleet spec language.
//!
//! A spec file declares **fleets**; a fleet lives in one region and holds named **groups** of
//! interchangeable instances. A group has a replica count (or explicit private IPs, one instance
//! each), the zones it spreads over, and a launch template written with the RunInstances API's
//! own parameter names, merged over the fleet's `defaults`:
//!
//! ```yaml
//! fleets:
//!   - name: web
//!     region: ap-guangzhou
//!     defaults:
//!       ImageId: img-pmqg1cw7
//!       InstanceType: S5.MEDIUM2
//!     groups:
//!       - name: frontend
//!         replicas: 3
//!         zones: [ap-guangzhou-3, ap-guangzhou-4]
//! ```
//!
//! Loading goes through one boundary (raw YAML in, validated types out):
//! 1. YAML is parsed once into a `serde_json::Value` plus the span of every node
//!    (anchors, aliases, merge keys, tags, duplicate keys and multiple documents are rejected);
//! 2. the value is validated against the JSON Schema generated from the Rust types
//!    ([`json_schema`]);
//! 3. the typed model is deserialized from the same value;
//! 4. semantic rules from the RunInstances documentation are checked, then the rules that span
//!    files (fleet names, private IPs).
//!
//! Every problem becomes a [`Diagnostic`] with `file:line:column`, a JSON pointer, a stable
//! code and the source line; all of them are returned together.
//!
//! ```
//! let text = "fleets:
//!   - name: web
//!     region: ap-guangzhou
//!     groups:
//!       - name: frontend
//!         replicas: 3
//!         zones: [ap-guangzhou-3, ap-guangzhou-4]
//!         template: {ImageId: img-pmqg1cw7, InstanceType: S5.MEDIUM2}
//! ";
//! let specs = cvmfleet_spec::load_str("web.yaml", text)?;
//! let group = &specs.fleets[0].groups[0];
//! let spread: Vec<u32> = group.placements.iter().map(|p| p.replicas).collect();
//! assert_eq!(spread, [2, 1]);
//! assert_eq!(group.template.canonical_hash().short().len(), 16);
//!
//! let broken = text.replace("replicas: 3", "replicas: many");
//! let errors = cvmfleet_spec::load_str("web.yaml", &broken).unwrap_err();
//! assert_eq!(errors.as_slice()[0].code, "schema.type");
//! assert_eq!((errors.as_slice()[0].line, errors.as_slice()[0].column), (6, 19));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod diagnostic;
pub mod files;
mod hash;
mod load;
mod model;
pub mod offering;
pub mod policy;
mod reference;
mod request;
mod resolve;
mod rules;
mod schema;
mod secret;
mod source;
pub mod template;
mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, MAX_SNIPPET_CHARS, Related, Snippet};
pub use files::{FileError, check_write_target, read_flag_file, read_flag_text};
pub use hash::TemplateHash;
pub use load::{MAX_FILE_BYTES, load_bytes, load_paths, load_sources, load_str, read_spec_file, spec_files};
pub use model::{
    FleetSpec, GroupSpec, MAX_REPLICAS, NAME_PATTERN, NAME_RULE, PoliciesSpec, SpecFile, ZoneEntry, ZoneSpec,
    check_name,
};
pub use offering::{Capacity, Offering, OfferingPolicy, ZonePolicy};
pub use policy::{DriftPolicies, DriftPolicy, GroupPolicies, MonthlyAmount, Rollout, StoppedPolicy};
pub use reference::reference_markdown;
pub use request::RequestTemplate;
pub use resolve::{Fleet, FleetPolicies, Group, LaunchTemplate, SourceLocation, SpecSet, ZonePlacement};
pub use rules::RESERVED_TAG_PREFIX;
pub use schema::json_schema;
pub use secret::{MAX_SECRET_BYTES, Secret, SecretError, SecretRef};
pub use yaml::MAX_DEPTH;
