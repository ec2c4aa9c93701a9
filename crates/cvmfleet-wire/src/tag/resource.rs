//! Six-segment resource names (资源六段式, document 598/10606):
//! `qcs:<project>:<service>:<region>:<account>:<prefix>/<id>`, e.g.
//! `qcs::cvm:ap-beijing:uin/1234567:instance/ins-123` (api.json, TagResources).

use std::fmt;

use super::codes;
use super::rules::Problem;

/// A parsed six-segment resource name.
///
/// The account segment is `uin/<uin>`. An empty uin (`uin/`) means the caller's own account:
/// terraform-provider-tencentcloud builds every tag resource name that way
/// (`BuildTagResourceName`, `qcs::%s:%s:uin/:%s/%s`), so a client need not know its uin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceName {
    /// Service, e.g. `cvm` (third segment).
    pub service_type: String,
    /// Region, e.g. `ap-guangzhou` (fourth segment; empty for resources without one).
    pub region: String,
    /// The account's uin; empty for the caller's own.
    pub uin: String,
    /// Resource prefix, e.g. `instance`.
    pub resource_prefix: String,
    /// Resource ID, e.g. `ins-1vogaxgk`.
    pub resource_id: String,
}

impl ResourceName {
    /// The name of a CVM instance. `uin` `None` (or empty) names the caller's account.
    #[must_use]
    pub fn cvm_instance(region: &str, uin: Option<&str>, instance_id: &str) -> Self {
        ResourceName {
            service_type: super::SERVICE_TYPE_CVM.to_owned(),
            region: region.to_owned(),
            uin: uin.unwrap_or_default().to_owned(),
            resource_prefix: super::RESOURCE_PREFIX_INSTANCE.to_owned(),
            resource_id: instance_id.to_owned(),
        }
    }

    /// Whether the name is a CVM instance's.
    #[must_use]
    pub fn is_cvm_instance(&self) -> bool {
        self.service_type == super::SERVICE_TYPE_CVM
            && self.resource_prefix == super::RESOURCE_PREFIX_INSTANCE
    }

    /// Reads a name.
    ///
    /// # Errors
    /// `InvalidParameterValue.ResourceDescriptionError` when the text does not have six
    /// segments, does not start with `qcs`, names no service, has an account segment other than
    /// `uin/<digits>` or `uin/`, or a last segment other than `<prefix>/<id>`.
    pub fn parse(text: &str) -> Result<Self, Problem> {
        let bad = |why: &str| {
            Problem::new(
                codes::INVALID_PARAMETER_VALUE_RESOURCE_DESCRIPTION_ERROR,
                format!(
                    "The resource `{text}` is not a six-segment resource name \
                     (qcs::<service>:<region>:uin/<uin>:<prefix>/<id>): {why}."
                ),
            )
        };
        let segments: Vec<&str> = text.split(':').collect();
        let [qcs, _project, service, region, account, resource] = segments.as_slice() else {
            return Err(bad(&format!("it has {} segments, not 6", segments.len())));
        };
        if *qcs != "qcs" {
            return Err(bad("it does not start with `qcs`"));
        }
        if service.is_empty() {
            return Err(bad("the service segment is empty"));
        }
        let Some(uin) = account.strip_prefix("uin/") else {
            return Err(bad("the account segment is not `uin/<uin>`"));
        };
        if !uin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the uin is not a number"));
        }
        let Some((prefix, id)) = resource.split_once('/') else {
            return Err(bad("the last segment is not `<prefix>/<id>`"));
        };
        if prefix.is_empty() || id.is_empty() {
            return Err(bad("the resource prefix or ID is empty"));
        }
        Ok(ResourceName {
            service_type: (*service).to_owned(),
            region: (*region).to_owned(),
            uin: uin.to_owned(),
            resource_prefix: prefix.to_owned(),
            resource_id: id.to_owned(),
        })
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "qcs::{}:{}:uin/{}:{}/{}",
            self.service_type, self.region, self.uin, self.resource_prefix, self.resource_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_examples_parse_and_print_back() {
        for text in [
            "qcs::cvm:ap-beijing:uin/1234567:instance/ins-123",
            "qcs::cvm:ap-guangzhou:uin/:instance/ins-1vogaxgk",
            "qcs::cos::uin/100000558920:bucket/b-1",
        ] {
            let name = ResourceName::parse(text).unwrap();
            assert_eq!(name.to_string(), text);
        }
        let name = ResourceName::parse("qcs::cvm:ap-beijing:uin/1234567:instance/ins-123").unwrap();
        assert!(name.is_cvm_instance());
        assert_eq!((name.region.as_str(), name.uin.as_str()), ("ap-beijing", "1234567"));
        // The project segment is ignored.
        let with_project = ResourceName::parse("qcs:0:cvm:ap-beijing:uin/1:instance/ins-1").unwrap();
        assert_eq!(with_project.to_string(), "qcs::cvm:ap-beijing:uin/1:instance/ins-1");
    }

    #[test]
    fn malformed_names_are_refused_with_the_description_code() {
        for bad in [
            "",
            "ins-1vogaxgk",
            "qcs::cvm:ap-beijing:uin/1:instance",
            "qcs::cvm:ap-beijing:1234567:instance/ins-1",
            "qcs::cvm:ap-beijing:uin/12a:instance/ins-1",
            "qcs:::ap-beijing:uin/1:instance/ins-1",
            "qcs::cvm:ap-beijing:uin/1:/ins-1",
            "qcs::cvm:ap-beijing:uin/1:instance/",
            "qcx::cvm:ap-beijing:uin/1:instance/ins-1",
            "qcs::cvm:ap-beijing:uin/1:instance/ins-1:extra",
        ] {
            let problem = ResourceName::parse(bad).unwrap_err();
            assert_eq!(problem.code, codes::INVALID_PARAMETER_VALUE_RESOURCE_DESCRIPTION_ERROR, "{bad}");
        }
    }
}
