//! What a group accepts to run on (`instanceTypes:`) and how it chooses among zones and
//! offerings when stock is short (`zonePolicy`, `instanceTypePolicy`, `rebalance`).
//!
//! An *offering* is an instance type with its billing: charge type and, for spot, the market
//! options. A group lists the offerings it accepts in order of preference; the planner
//! launches on the first one with stock (see `cvmfleet-plan`'s `token` module for why the
//! choice never changes a ClientToken).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cvmfleet_wire::model::{InstanceMarketOptionsRequest, SpotMarketOptions};
use cvmfleet_wire::vocab::{self, InstanceChargeType as WireChargeType};

use crate::diagnostic::Diagnostic;
use crate::rules::Locator;
use crate::schema::span_of;
use crate::template::{InstanceChargeType, Template};

/// Most offerings a group may list: the bound Tencent's Auto Scaling puts on a launch
/// configuration's instance types.
pub const MAX_OFFERINGS: usize = 10;

/// One item of `instanceTypes:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OfferingEntry {
    /// An instance type, billed as the template says (`InstanceChargeType`, default
    /// POSTPAID_BY_HOUR).
    Type(#[schemars(regex(pattern = r"^[A-Za-z0-9]+\.[A-Z0-9]+$"))] String),
    /// An instance type with its own billing.
    Detailed(OfferingSpec),
}

/// An instance type with its own billing, e.g. spot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct OfferingSpec {
    /// Instance type, e.g. S5.MEDIUM2.
    #[schemars(regex(pattern = r"^[A-Za-z0-9]+\.[A-Z0-9]+$"))]
    pub instance_type: String,
    /// Billing of this offering: PREPAID, POSTPAID_BY_HOUR or SPOTPAID. Default: the
    /// template's InstanceChargeType, or SPOTPAID when InstanceMarketOptions is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_charge_type: Option<OfferingChargeType>,
    /// Spot bid (SPOTPAID only). Without it, a SPOTPAID offering bids the current fixed
    /// discount price, as the API does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_market_options: Option<MarketOptionsSpec>,
}

/// Billing of an offering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfferingChargeType {
    /// Monthly subscription (the template's InstanceChargePrepaid gives the period).
    Prepaid,
    /// Pay as you go, by the hour.
    PostpaidByHour,
    /// Spot: a fraction of the hourly price, reclaimable by the cloud.
    Spotpaid,
}

impl OfferingChargeType {
    /// The wire value.
    #[must_use]
    pub fn wire(self) -> WireChargeType {
        match self {
            OfferingChargeType::Prepaid => WireChargeType::Prepaid,
            OfferingChargeType::PostpaidByHour => WireChargeType::PostpaidByHour,
            OfferingChargeType::Spotpaid => WireChargeType::Spotpaid,
        }
    }
}

/// `InstanceMarketOptions` of a spot offering, under the API's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MarketOptionsSpec {
    /// `spot`, the only market type. Default: spot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_type: Option<String>,
    /// The bid.
    pub spot_options: SpotOptionsSpec,
}

/// A spot bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SpotOptionsSpec {
    /// Highest price per hour in yuan, as a decimal string, e.g. `"0.5"`.
    pub max_price: String,
    /// `one-time`, the only request type. Default: one-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_instance_type: Option<String>,
}

/// How a group's slots are placed over its zones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ZonePolicy {
    /// Even split over the zones in list order; slots a short zone cannot take go to the
    /// group's other zones meanwhile.
    #[default]
    Spread,
    /// Fill the zones in list order: the first zone while it has stock, then the next.
    Priority,
}

/// How a group orders its accepted offerings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OfferingPolicy {
    /// In list order.
    #[default]
    Priority,
    /// By the price the cloud quotes in each zone, cheapest first; ties in list order.
    Cheapest,
}

/// A resolved offering: what a create launches on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offering {
    /// Instance type.
    pub instance_type: String,
    /// Charge type (wire name), e.g. `POSTPAID_BY_HOUR`.
    pub charge_type: String,
    /// Spot bid, SPOTPAID only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_options: Option<InstanceMarketOptionsRequest>,
}

impl Offering {
    /// Short human text: `S5.MEDIUM2`, or `S5.MEDIUM2 (SPOTPAID)` when not billed by the hour.
    #[must_use]
    pub fn label(&self) -> String {
        if self.charge_type == vocab::InstanceChargeType::PostpaidByHour.as_str() {
            self.instance_type.clone()
        } else {
            format!("{} ({})", self.instance_type, self.charge_type)
        }
    }
}

/// What a group's `instanceTypes`, `zonePolicy`, `instanceTypePolicy` and `rebalance` resolve to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capacity {
    /// Accepted offerings in list order; empty when the template's InstanceType decides.
    pub offerings: Vec<Offering>,
    /// Zone placement policy.
    pub zone_policy: ZonePolicy,
    /// Offering order policy.
    pub offering_policy: OfferingPolicy,
    /// Replace instances on a less preferred zone or offering once a better one has stock.
    pub rebalance: bool,
}

/// Checks a group's `instanceTypes:` against its merged template and resolves them. `own` is
/// the group's own template (before the fleet's defaults), whose InstanceType would conflict.
pub(crate) fn resolve_offerings(
    at: &Locator<'_>,
    entries: &[OfferingEntry],
    own: Option<&Template>,
    template: &Template,
    out: &mut Vec<Diagnostic>,
) -> Vec<Offering> {
    let list_ptr = format!("{}/instanceTypes", at.group_ptr);
    let push = |out: &mut Vec<Diagnostic>, ptr: &str, code: &str, message: String| {
        out.push(Diagnostic::new(at.source, span_of(at.doc, ptr, false), ptr, code, message));
    };
    if own.is_some_and(|t| t.instance_type.is_some()) {
        let (ptr, span) = at.locate("/InstanceType");
        out.push(
            Diagnostic::new(
                at.source,
                span,
                &ptr,
                "semantic.instance-type-conflict",
                "the group lists `instanceTypes` and also sets InstanceType in its template; give the instance types in one place".to_owned(),
            )
            .with_help("remove InstanceType: `instanceTypes` lists what the group accepts, in order"),
        );
    }
    if entries.len() > MAX_OFFERINGS {
        push(
            out,
            &list_ptr,
            "semantic.instance-types-count",
            format!("`instanceTypes` lists {} offerings; expected at most {MAX_OFFERINGS}", entries.len()),
        );
    }
    let template_charge = template.instance_charge_type;
    if template_charge == Some(InstanceChargeType::Cdhpaid) {
        let (ptr, span) = at.locate("/InstanceChargeType");
        out.push(Diagnostic::new(
            at.source,
            span,
            &ptr,
            "semantic.instance-types-cdh",
            "`instanceTypes` does not apply to CDHPAID groups: a dedicated host runs the types it was made for; set InstanceType instead".to_owned(),
        ));
        return Vec::new();
    }
    let mut offerings: Vec<Offering> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let item_ptr = format!("{list_ptr}/{i}");
        let (instance_type, charge, market) = match entry {
            OfferingEntry::Type(t) => (t.clone(), None, None),
            OfferingEntry::Detailed(d) => {
                (d.instance_type.clone(), d.instance_charge_type, d.instance_market_options.clone())
            }
        };
        let charge = match (charge, &market) {
            (Some(c), _) => c.wire(),
            (None, Some(_)) => WireChargeType::Spotpaid,
            (None, None) => template_charge.map_or(WireChargeType::PostpaidByHour, InstanceChargeType::wire),
        };
        let market_options = market.map(|m| InstanceMarketOptionsRequest {
            market_type: Some(m.market_type.unwrap_or_else(|| vocab::MarketType::Spot.as_str().to_owned())),
            spot_options: Some(SpotMarketOptions {
                max_price: Some(m.spot_options.max_price),
                spot_instance_type: Some(
                    m.spot_options
                        .spot_instance_type
                        .unwrap_or_else(|| vocab::SpotInstanceType::OneTime.as_str().to_owned()),
                ),
            }),
        });
        if let Some(options) = &market_options {
            let options_ptr = format!("{item_ptr}/InstanceMarketOptions");
            if charge != WireChargeType::Spotpaid {
                push(
                    out,
                    &options_ptr,
                    "semantic.market-options-need-spotpaid",
                    format!(
                        "InstanceMarketOptions is a spot bid, which needs InstanceChargeType SPOTPAID, found {}",
                        charge.as_str()
                    ),
                );
            }
            if let Some(problem) = vocab::market_options_problem(options) {
                push(out, &options_ptr, "semantic.market-options", format!("{problem}"));
            }
        }
        if charge == WireChargeType::Prepaid && template.instance_charge_prepaid.is_none() {
            push(
                out,
                &item_ptr,
                "semantic.prepaid-needs-period",
                "this offering is PREPAID but the template has no InstanceChargePrepaid; expected the subscription period".to_owned(),
            );
        }
        let offering = Offering { instance_type, charge_type: charge.as_str().to_owned(), market_options };
        if let Some(first) = offerings
            .iter()
            .position(|o| o.instance_type == offering.instance_type && o.charge_type == offering.charge_type)
        {
            out.push(
                Diagnostic::new(
                    at.source,
                    span_of(at.doc, &item_ptr, false),
                    &item_ptr,
                    "semantic.duplicate-offering",
                    format!("{} is listed twice", offering.label()),
                )
                .with_related(
                    at.source,
                    span_of(at.doc, &format!("{list_ptr}/{first}"), false),
                    "first listed here",
                ),
            );
            continue;
        }
        offerings.push(offering);
    }
    offerings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_billing_unless_hourly() {
        let hourly = Offering {
            instance_type: "S5.MEDIUM2".into(),
            charge_type: "POSTPAID_BY_HOUR".into(),
            market_options: None,
        };
        assert_eq!(hourly.label(), "S5.MEDIUM2");
        let spot = Offering { charge_type: "SPOTPAID".into(), ..hourly };
        assert_eq!(spot.label(), "S5.MEDIUM2 (SPOTPAID)");
    }
}
