//! The Tencent Cloud API 3.0 services cvmfleet speaks, each with the facts both ends need: its
//! name (the TC3 credential scope and the first label of its host), its API version and its
//! public host.
//!
//! Every [`crate::Action`] belongs to exactly one service ([`crate::Action::service`]); a client
//! signs a call with that service's name and version and sends it to that service's host, and
//! the emulator, which serves every service on one port, routes a call by the same facts (see
//! its crate documentation).
//!
//! ```
//! use cvmfleet_wire::{Action, Service};
//!
//! assert_eq!(Action::TagResources.service(), Service::Tag);
//! assert_eq!(Service::Tag.version(), "2018-08-13");
//! assert_eq!(Service::from_version("2017-03-12"), Some(Service::Cvm));
//! ```

use std::fmt;

/// A service of the Tencent Cloud API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Service {
    /// Cloud Virtual Machine, API version 2017-03-12 (`cvm-2017-03-12/api.json`).
    Cvm,
    /// The Tag service, API version 2018-08-13 (`tag-2018-08-13/api.json`): tags of any
    /// resource, addressed by six-segment resource names ([`crate::tag::ResourceName`]).
    Tag,
}

impl Service {
    /// Every service, in a stable order.
    pub const ALL: [Service; 2] = [Service::Cvm, Service::Tag];

    /// The service name: the TC3 credential scope's service and the first label of the host
    /// (api.json `metadata.serviceShortName`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Service::Cvm => "cvm",
            Service::Tag => "tag",
        }
    }

    /// The API version cvmfleet speaks (`X-TC-Version`, api.json `metadata.apiVersion`).
    #[must_use]
    pub const fn version(self) -> &'static str {
        match self {
            Service::Cvm => "2017-03-12",
            Service::Tag => "2018-08-13",
        }
    }

    /// The public host. The API documents give `cvm.tencentcloudapi.com` and
    /// `tag.tencentcloudapi.com` ("接口请求域名"); region hosts (`cvm.<region>.…`) also exist.
    #[must_use]
    pub const fn default_host(self) -> &'static str {
        match self {
            Service::Cvm => "cvm.tencentcloudapi.com",
            Service::Tag => "tag.tencentcloudapi.com",
        }
    }

    /// The service with this name (`cvm`, `tag`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The service that speaks this API version. The versions of cvmfleet's services are all
    /// different, so a version alone names the service (the v1 signature has no credential
    /// scope to say it).
    #[must_use]
    pub fn from_version(version: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.version() == version)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_and_hosts_are_distinct() {
        for s in Service::ALL {
            assert_eq!(Service::from_name(s.name()), Some(s));
            assert_eq!(Service::from_version(s.version()), Some(s));
            assert!(s.default_host().starts_with(&format!("{}.", s.name())));
        }
        assert_eq!(Service::from_version("2020-01-01"), None);
        assert_eq!(Service::Cvm.version(), crate::API_VERSION);
        assert_eq!(Service::Cvm.name(), crate::SERVICE);
        assert_eq!(Service::Cvm.default_host(), crate::DEFAULT_HOST);
    }
}
