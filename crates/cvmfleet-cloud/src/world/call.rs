//! One API call of the world: the action's parameters read, the action run at the call's time,
//! its response encoded. The emulator (over HTTP) and the simulation (in process) both answer
//! through here, so they answer alike.

use cvmfleet_wire::Action;
use cvmfleet_wire::api::{
    DescribeImagesRequest, DescribeInstanceTypeConfigsRequest, DescribeInstancesRequest,
    DescribeInstancesStatusRequest, DescribeRegionsRequest, DescribeZoneInstanceConfigInfosRequest,
    DescribeZonesRequest, EmptyResponse, InquiryPriceRunInstancesRequest, ModifyInstancesAttributeRequest,
    RunInstancesRequest, StartInstancesRequest, StopInstancesRequest, TerminateInstancesRequest,
};
use cvmfleet_wire::codes;
use cvmfleet_wire::tag::api as tag_api;
use serde::Serialize;

use super::{Ctx, LaunchDraw, LaunchFate, Mutation, World};
use crate::api_error::ApiError;
use crate::params::{Params, decode};

/// Writes a successful response: the emulator writes the HTTP body, the simulation a JSON value.
pub trait Encode {
    /// What an encoded response is.
    type Body;
    /// Encodes one response.
    fn encode<T: Serialize>(&self, data: &T) -> Self::Body;
}

impl World {
    /// Refuses an action that needs a region with a region the catalog does not have
    /// (`UnsupportedRegion`).
    ///
    /// # Errors
    /// [`ApiError`] `UnsupportedRegion`.
    pub fn check_region(&self, action: Action, region: &str) -> Result<(), ApiError> {
        if action.needs_region() && self.catalog.region(region).is_none() {
            return Err(ApiError::new(
                codes::UNSUPPORTED_REGION,
                format!("The region `{region}` is not supported."),
            ));
        }
        Ok(())
    }

    /// Runs one authenticated call at `ctx.now_ms` (due transitions first): the encoded
    /// response and the changes to journal. `launch` decides the fate of each instance a
    /// RunInstances creates (the random draws of the caller's seeded source).
    ///
    /// # Errors
    /// The action's [`ApiError`]; nothing changed then.
    pub fn call<E: Encode>(
        &mut self,
        ctx: &Ctx,
        action: Action,
        params: &Params,
        launch: &mut dyn FnMut(LaunchDraw) -> LaunchFate,
        encoder: &E,
    ) -> Result<(E::Body, Mutation), ApiError> {
        self.advance(ctx.now_ms);
        let empty = |m: Mutation| (encoder.encode(&EmptyResponse {}), m);
        let read = |body: E::Body| (body, Mutation::default());
        let region = ctx.region.as_str();
        Ok(match action {
            Action::RunInstances => {
                let req: RunInstancesRequest = decode(params)?;
                let (response, mutation) = self.run_instances(ctx, &req, launch)?;
                (encoder.encode(&response), mutation)
            }
            Action::DescribeInstances => {
                let req: DescribeInstancesRequest = decode(params)?;
                read(encoder.encode(&self.describe_instances(region, &req)?))
            }
            Action::DescribeInstancesStatus => {
                let req: DescribeInstancesStatusRequest = decode(params)?;
                read(encoder.encode(&self.describe_status(region, &req)?))
            }
            Action::TerminateInstances => {
                empty(self.terminate(ctx, &decode::<TerminateInstancesRequest>(params)?)?)
            }
            Action::StartInstances => empty(self.start(ctx, &decode::<StartInstancesRequest>(params)?)?),
            Action::StopInstances => empty(self.stop(ctx, &decode::<StopInstancesRequest>(params)?)?),
            Action::ModifyInstancesAttribute => {
                empty(self.modify(ctx, &decode::<ModifyInstancesAttributeRequest>(params)?)?)
            }
            Action::DescribeZones => {
                let _: DescribeZonesRequest = decode(params)?;
                read(encoder.encode(&self.describe_zones(region)))
            }
            Action::DescribeImages => {
                let req: DescribeImagesRequest = decode(params)?;
                read(encoder.encode(&self.describe_images(&req)?))
            }
            Action::DescribeInstanceTypeConfigs => {
                let req: DescribeInstanceTypeConfigsRequest = decode(params)?;
                read(encoder.encode(&self.describe_instance_types(region, &req)?))
            }
            Action::DescribeRegions => {
                let _: DescribeRegionsRequest = decode(params)?;
                read(encoder.encode(&self.describe_regions()))
            }
            // The Tag service (tags.rs).
            Action::TagResources => {
                let (response, mutation) = self.tag_resources(&decode(params)?)?;
                (encoder.encode(&response), mutation)
            }
            Action::UnTagResources => {
                let (response, mutation) = self.untag_resources(&decode(params)?)?;
                (encoder.encode(&response), mutation)
            }
            Action::ModifyResourceTags => {
                empty(self.modify_resource_tags(&decode::<tag_api::ModifyResourceTagsRequest>(params)?)?)
            }
            Action::DescribeResourcesByTags => {
                let req: tag_api::DescribeResourcesByTagsRequest = decode(params)?;
                read(encoder.encode(&self.describe_resources_by_tags(&req)?))
            }
            Action::DescribeResourceTagsByResourceIds => {
                let req: tag_api::DescribeResourceTagsByResourceIdsRequest = decode(params)?;
                read(encoder.encode(&self.describe_resource_tags_by_ids(&req)?))
            }
            Action::GetResources => {
                let req: tag_api::GetResourcesRequest = decode(params)?;
                read(encoder.encode(&self.get_resources(&req)?))
            }
            Action::DescribeZoneInstanceConfigInfos => {
                let req: DescribeZoneInstanceConfigInfosRequest = decode(params)?;
                read(encoder.encode(&self.describe_zone_configs(region, &req)?))
            }
            Action::InquiryPriceRunInstances => {
                let req: InquiryPriceRunInstancesRequest = decode(params)?;
                read(encoder.encode(&self.inquiry_price(ctx, &req)?))
            }
            other => {
                return Err(ApiError::new(
                    codes::INVALID_ACTION,
                    format!("The action `{other}` is not supported."),
                ));
            }
        })
    }
}
