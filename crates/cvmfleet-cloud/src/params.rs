//! A request's business parameters and their reading into an action's request type, the same
//! for the emulator's JSON and query forms and for the simulation's in-process calls.

use serde::de::DeserializeOwned;

use crate::api_error::ApiError;

/// Business parameters, in the form they came in.
#[derive(Debug, Clone)]
pub enum Params {
    /// A POST JSON body (or the simulation's serialized request).
    Json(serde_json::Value),
    /// Flattened `name=value` pairs (GET query or v1 form body), common parameters removed.
    Pairs(Vec<(String, String)>),
}

/// Reads the business parameters into an action's request type: unknown parameters, at the
/// top level or nested (`Placement.Zon`), are `UnknownParameter`; values of the wrong type
/// `InvalidParameter`.
///
/// # Errors
/// [`ApiError`] `UnknownParameter` or `InvalidParameter`.
pub fn decode<T: DeserializeOwned + serde::Serialize>(params: &Params) -> Result<T, ApiError> {
    let (typed, given) = match params {
        Params::Json(value) => {
            let typed: T = serde_json::from_value(value.clone()).map_err(|e| {
                let text = e.to_string();
                match text.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
                    Some(field) => unknown_parameter(field),
                    None => ApiError::invalid_parameter(format!("The parameters are malformed: {text}.")),
                }
            })?;
            (typed, cvmfleet_wire::flat::flatten(value))
        }
        Params::Pairs(pairs) => {
            let typed: T = cvmfleet_wire::flat::from_pairs(pairs).map_err(|e| match e {
                cvmfleet_wire::flat::FlatError::Unknown(field) => unknown_parameter(&field),
                other => ApiError::invalid_parameter(format!("The parameters are malformed: {other}.")),
            })?;
            (typed, pairs.clone())
        }
    };
    // Nested objects of the wire types accept unknown fields (responses must tolerate a newer
    // service), so a request's nested names are checked here: every name given must be one
    // the typed request gives back.
    let known: std::collections::HashSet<String> =
        cvmfleet_wire::flat::flatten(&typed).into_iter().map(|(name, _)| name).collect();
    match given.into_iter().find(|(name, _)| !known.contains(name)) {
        Some((name, _)) => Err(unknown_parameter(&name)),
        None => Ok(typed),
    }
}

fn unknown_parameter(name: &str) -> ApiError {
    ApiError::new("UnknownParameter", format!("The parameter `{name}` is not recognized."))
}

#[cfg(test)]
mod tests {
    use cvmfleet_wire::api::RunInstancesRequest;

    use super::*;

    #[test]
    fn decoding_maps_errors_to_codes() {
        let json = Params::Json(serde_json::json!({"ImageId": "img-pmqg1cw7", "Bogus": 1}));
        assert_eq!(decode::<RunInstancesRequest>(&json).unwrap_err().code, "UnknownParameter");
        let json = Params::Json(serde_json::json!({"InstanceCount": "two"}));
        assert_eq!(decode::<RunInstancesRequest>(&json).unwrap_err().code, "InvalidParameter");
        let flat = Params::Pairs(vec![("Bogus".into(), "1".into())]);
        assert_eq!(decode::<RunInstancesRequest>(&flat).unwrap_err().code, "UnknownParameter");
        let flat = Params::Pairs(vec![("InstanceCount".into(), "x".into())]);
        assert_eq!(decode::<RunInstancesRequest>(&flat).unwrap_err().code, "InvalidParameter");
        // Nested names are checked too, in both forms.
        let nested = Params::Json(serde_json::json!({"Placement": {"Zone": "z", "Zon": "z"}}));
        let err = decode::<RunInstancesRequest>(&nested).unwrap_err();
        assert_eq!((err.code.as_str(), err.message.contains("Placement.Zon")), ("UnknownParameter", true));
        let nested = Params::Pairs(vec![("DataDisks.0.DiskSise".into(), "10".into())]);
        assert_eq!(decode::<RunInstancesRequest>(&nested).unwrap_err().code, "UnknownParameter");
        let fine = Params::Pairs(vec![
            ("Placement.Zone".into(), "z".into()),
            ("InternetAccessible.PublicIpAssigned".into(), "TRUE".into()),
            ("DataDisks.0.DiskSize".into(), "10".into()),
        ]);
        assert!(decode::<RunInstancesRequest>(&fine).is_ok());
    }
}
