//! The spec reference in Markdown, generated from the JSON Schema, so that the documentation
//! cannot drift from what `validate` enforces. `schemas/reference.md` holds a copy.

use std::fmt::Write as _;

use serde_json::Value;

use crate::schema::json_schema;

/// Sections in reading order: the file, then what a fleet holds, then the launch template.
const ORDER: &[&str] = &[
    "FleetSpec",
    "PoliciesSpec",
    "FleetDriftSpec",
    "RolloutSpec",
    "CountSpec",
    "GroupSpec",
    "GroupPoliciesSpec",
    "GroupDriftSpec",
    "ZoneEntry",
    "ZoneSpec",
    "OfferingEntry",
    "OfferingSpec",
    "MarketOptionsSpec",
    "SpotOptionsSpec",
    "Template",
    "InstanceChargePrepaid",
    "Placement",
    "SystemDisk",
    "DataDisk",
    "VirtualPrivateCloud",
    "InternetAccessible",
    "LoginSettings",
    "SecretRef",
    "KeepImageLogin",
    "EnhancedService",
    "ServiceEnabled",
    "ActionTimer",
    "Externals",
    "TagSpecification",
    "Tag",
];

fn anchor(name: &str) -> String {
    name.to_lowercase()
}

fn one_line(text: &str) -> String {
    text.replace("\n\n", " ").replace('\n', " ").replace('|', "\\|")
}

/// Renders the type of a property: references link to their section, enums list their values,
/// ranges and patterns are shown.
fn type_of(schema: &Value, defs: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        let def = &defs[name];
        if let Some(values) = enum_values(def) {
            return values;
        }
        if def.get("properties").is_some() || def.get("oneOf").is_some() || def.get("anyOf").is_some() {
            return format!("[{name}](#{})", anchor(name));
        }
        return type_of(def, defs);
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let parts: Vec<String> = any
            .iter()
            .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
            .map(|s| type_of(s, defs))
            .collect();
        return parts.join(" or ");
    }
    if let Some(values) = enum_values(schema) {
        return values;
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join(" or ")
        }
        _ => String::new(),
    };
    let mut out = match kind.as_str() {
        "array" => {
            let item = schema.get("items").map_or_else(String::new, |i| type_of(i, defs));
            format!("list of {item}")
        }
        "object" if schema.get("additionalProperties").is_some_and(Value::is_object) => {
            "map of string to string".to_owned()
        }
        "object" => "mapping".to_owned(),
        other => other.to_owned(),
    };
    let mut notes = Vec::new();
    match (schema.get("minimum"), schema.get("maximum")) {
        (Some(min), Some(max)) => notes.push(format!("{min}–{max}")),
        (Some(min), None) if min != 0 => notes.push(format!("≥ {min}")),
        (None, Some(max)) => notes.push(format!("≤ {max}")),
        _ => {}
    }
    if let Some(m) = schema.get("multipleOf") {
        notes.push(format!("multiple of {m}"));
    }
    match (schema.get("minLength"), schema.get("maxLength")) {
        (Some(min), Some(max)) => notes.push(format!("{min}–{max} chars")),
        (None, Some(max)) => notes.push(format!("≤ {max} chars")),
        _ => {}
    }
    match (schema.get("minItems"), schema.get("maxItems")) {
        (Some(min), Some(max)) => notes.push(format!("{min}–{max} items")),
        (Some(min), None) => notes.push(format!("≥ {min} item{}", if min == 1 { "" } else { "s" })),
        (None, Some(max)) => notes.push(format!("≤ {max} items")),
        _ => {}
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
        notes.push(format!("`{}`", p.replace('|', "\\|")));
    }
    if !notes.is_empty() {
        let _ = write!(out, " ({})", notes.join(", "));
    }
    out
}

/// `A`, `B` or `C` for enums (plain `enum` or a `oneOf` of constants).
fn enum_values(schema: &Value) -> Option<String> {
    let values: Vec<String> = if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        e.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect()
    } else {
        let one_of = schema.get("oneOf").and_then(Value::as_array)?;
        let consts: Option<Vec<String>> =
            one_of.iter().map(|v| v.get("const").and_then(Value::as_str).map(str::to_owned)).collect();
        consts?
    };
    Some(values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "))
}

fn table(out: &mut String, def: &Value, defs: &Value) {
    let required: Vec<&str> = def
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(props) = def.get("properties").and_then(Value::as_object) else {
        return;
    };
    out.push_str("| Field | Type | Description |\n|---|---|---|\n");
    for (name, prop) in props {
        let req = if required.contains(&name.as_str()) { " **(required)**" } else { "" };
        let description = prop.get("description").and_then(Value::as_str).unwrap_or_default();
        let _ = writeln!(out, "| `{name}`{req} | {} | {} |", type_of(prop, defs), one_line(description));
    }
}

/// The spec reference as Markdown: one section per mapping of the spec language, with every
/// field's type, constraints and description.
#[must_use]
pub fn reference_markdown() -> String {
    let schema = json_schema();
    let defs = &schema["$defs"];
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from the JSON Schema by `cvmfleet_spec::reference_markdown()`; do not edit. -->\n",
    );
    out.push_str("# Fleet spec reference\n\n");
    if let Some(d) = schema.get("description").and_then(Value::as_str) {
        let _ = writeln!(out, "{}\n", one_line(d));
    }
    table(&mut out, &schema, defs);
    for name in ORDER {
        let def = &defs[*name];
        if def.is_null() {
            continue;
        }
        let _ = writeln!(out, "\n## {name}\n");
        if let Some(d) = def.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", one_line(d));
        }
        if def.get("properties").is_some() {
            table(&mut out, def, defs);
        } else if let Some(alternatives) =
            def.get("anyOf").or_else(|| def.get("oneOf")).and_then(Value::as_array)
        {
            out.push_str("One of:\n\n");
            for alt in alternatives {
                let description = alt.get("description").and_then(Value::as_str).unwrap_or_default();
                let shape = match alt.get("properties").and_then(Value::as_object) {
                    Some(props) => props
                        .iter()
                        .map(|(k, v)| format!("a mapping with `{k}`: {}", type_of(v, defs)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    None => type_of(alt, defs),
                };
                if description.is_empty() {
                    let _ = writeln!(out, "- {shape}");
                } else {
                    let _ = writeln!(out, "- {shape}: {}", one_line(description));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapping_has_a_section() {
        let schema = json_schema();
        let text = reference_markdown();
        for (name, def) in schema["$defs"].as_object().into_iter().flatten() {
            if def.get("properties").is_some() {
                assert!(text.contains(&format!("\n## {name}\n")), "no section for {name}");
            }
        }
        assert!(text.contains("| `ImageId` | string (`^img-[a-z0-9]{8}$`) |"), "{text}");
    }
}
