//! A resolved template as the RunInstances request it stands for: a typed field-by-field
//! conversion, so nothing can fail at run time between the validated spec and the wire (issue
//! 11). The password stays a reference: [`RequestTemplate::password`] is read only when the
//! request is sent.

use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model;

use crate::resolve::LaunchTemplate;
use crate::secret::SecretRef;
use crate::template::{
    ActionTimer, DataDisk, EnhancedService, InstanceChargePrepaid, InternetAccessible, LoginSettings,
    Placement, ServiceEnabled, SystemDisk, TagSpecification, Template, TimerAction, VirtualPrivateCloud,
};

/// A group's RunInstances request without its count, token and password, and the reference
/// the password is read from.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTemplate {
    /// The request: every template field in its wire form.
    pub request: RunInstancesRequest,
    /// `LoginSettings.Password`, still a reference.
    pub password: Option<SecretRef>,
}

impl LaunchTemplate {
    /// The request this template stands for.
    #[must_use]
    pub fn to_request(&self) -> RequestTemplate {
        self.fields().wire_request()
    }
}

impl Template {
    /// Resolution has folded the `Tags` shorthand into `TagSpecification` before this is called.
    fn wire_request(&self) -> RequestTemplate {
        let request = RunInstancesRequest {
            instance_charge_type: self.instance_charge_type.map(|t| t.as_str().to_owned()),
            instance_charge_prepaid: self.instance_charge_prepaid.as_ref().map(prepaid),
            placement: self.placement.as_ref().map(placement),
            instance_type: self.instance_type.clone(),
            image_id: self.image_id.clone(),
            system_disk: self.system_disk.as_ref().map(system_disk),
            data_disks: self.data_disks.as_ref().map(|disks| disks.iter().map(data_disk).collect()),
            virtual_private_cloud: self.virtual_private_cloud.as_ref().map(vpc),
            internet_accessible: self.internet_accessible.as_ref().map(internet),
            instance_name: self.instance_name.clone(),
            login_settings: self.login_settings.as_ref().and_then(login),
            security_group_ids: self.security_group_ids.clone(),
            enhanced_service: self.enhanced_service.as_ref().map(enhanced),
            host_name: self.host_name.clone(),
            action_timer: self.action_timer.as_ref().map(timer),
            tag_specification: self
                .tag_specification
                .as_ref()
                .map(|specs| specs.iter().map(tag_specification).collect()),
            user_data: self.user_data.clone(),
            disable_api_termination: self.disable_api_termination,
            ..RunInstancesRequest::default()
        };
        let password = self.login_settings.as_ref().and_then(|l| l.password.clone());
        RequestTemplate { request, password }
    }
}

fn prepaid(p: &InstanceChargePrepaid) -> model::InstanceChargePrepaid {
    model::InstanceChargePrepaid {
        period: i64::from(p.period),
        renew_flag: p.renew_flag.map(|f| f.wire().as_str().to_owned()),
    }
}

fn placement(p: &Placement) -> model::Placement {
    model::Placement {
        zone: p.zone.clone().unwrap_or_default(),
        project_id: p.project_id,
        host_ids: p.host_ids.clone(),
        ..model::Placement::default()
    }
}

fn system_disk(d: &SystemDisk) -> model::SystemDisk {
    model::SystemDisk {
        disk_type: d.disk_type.map(|t| t.wire().as_str().to_owned()),
        disk_size: d.disk_size.map(i64::from),
        ..model::SystemDisk::default()
    }
}

fn data_disk(d: &DataDisk) -> model::DataDisk {
    model::DataDisk {
        disk_size: i64::from(d.disk_size),
        disk_type: d.disk_type.map(|t| t.as_str().to_owned()),
        delete_with_instance: d.delete_with_instance,
        snapshot_id: d.snapshot_id.clone(),
        encrypt: d.encrypt,
        ..model::DataDisk::default()
    }
}

fn vpc(v: &VirtualPrivateCloud) -> model::VirtualPrivateCloud {
    model::VirtualPrivateCloud {
        vpc_id: v.vpc_id.clone().unwrap_or_default(),
        subnet_id: v.subnet_id.clone().unwrap_or_default(),
        as_vpc_gateway: v.as_vpc_gateway,
        private_ip_addresses: v.private_ip_addresses.clone(),
        ipv6_address_count: v.ipv6_address_count.map(u64::from),
    }
}

fn internet(i: &InternetAccessible) -> model::InternetAccessible {
    model::InternetAccessible {
        internet_charge_type: i.internet_charge_type.map(|t| t.wire().as_str().to_owned()),
        internet_max_bandwidth_out: i.internet_max_bandwidth_out.map(i64::from),
        public_ip_assigned: i.public_ip_assigned,
        bandwidth_package_id: i.bandwidth_package_id.clone(),
    }
}

/// Without the password (a reference here); `None` when nothing else is set.
fn login(l: &LoginSettings) -> Option<model::LoginSettings> {
    if l.key_ids.is_none() && l.keep_image_login.is_none() {
        return None;
    }
    Some(model::LoginSettings {
        password: None,
        key_ids: l.key_ids.clone(),
        keep_image_login: l.keep_image_login.map(|k| if k.0 { "true" } else { "false" }.to_owned()),
    })
}

fn enhanced(e: &EnhancedService) -> model::EnhancedService {
    let enabled = |s: &ServiceEnabled| model::ServiceEnabled { enabled: s.enabled };
    model::EnhancedService {
        security_service: e.security_service.as_ref().map(enabled),
        monitor_service: e.monitor_service.as_ref().map(enabled),
        automation_service: e.automation_service.as_ref().map(enabled),
    }
}

fn timer(t: &ActionTimer) -> model::ActionTimer {
    model::ActionTimer {
        timer_action: Some(match t.timer_action {
            TimerAction::TerminateInstances => "TerminateInstances".to_owned(),
        }),
        action_time: Some(t.action_time.clone()),
        externals: t.externals.as_ref().map(|x| model::Externals {
            release_address: x.release_address,
            unsupport_networks: x.unsupport_networks.clone(),
        }),
    }
}

fn tag_specification(s: &TagSpecification) -> model::TagSpecification {
    model::TagSpecification {
        resource_type: s.resource_type.clone(),
        tags: s.tags.iter().map(|t| model::Tag { key: t.key.clone(), value: t.value.clone() }).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of a full template reaches the request exactly as the serialized template
    /// says (the old serde path), so ClientTokens, which hash the request, stay what they were.
    #[test]
    fn the_typed_request_is_the_serialized_template() {
        let yaml = r#"
fleets:
  - name: full
    region: ap-guangzhou
    groups:
      - name: web
        replicas: 1
        zones: [ap-guangzhou-3]
        template:
          InstanceChargeType: PREPAID
          InstanceChargePrepaid: {Period: 1, RenewFlag: NOTIFY_AND_AUTO_RENEW}
          Placement: {ProjectId: 0}
          InstanceType: S5.MEDIUM2
          ImageId: img-pmqg1cw7
          SystemDisk: {DiskType: CLOUD_PREMIUM, DiskSize: 50}
          DataDisks:
            - {DiskSize: 100, DiskType: CLOUD_SSD, DeleteWithInstance: true, Encrypt: false}
          VirtualPrivateCloud: {VpcId: vpc-12345678, SubnetId: subnet-12345678, AsVpcGateway: false, Ipv6AddressCount: 1}
          InternetAccessible: {InternetChargeType: TRAFFIC_POSTPAID_BY_HOUR, InternetMaxBandwidthOut: 10, PublicIpAssigned: true}
          InstanceName: web-{R:1}
          LoginSettings: {KeyIds: [skey-12345678]}
          SecurityGroupIds: [sg-12345678]
          EnhancedService: {SecurityService: {Enabled: true}, MonitorService: {Enabled: false}, AutomationService: {Enabled: true}}
          HostName: web-{R:1}
          ActionTimer: {TimerAction: TerminateInstances, ActionTime: "2030-01-01T00:00:00Z", Externals: {ReleaseAddress: true}}
          Tags: {team: web}
          UserData: ZWNobyBoaQ==
          DisableApiTermination: false
"#;
        let specs = crate::load_str("full.yaml", yaml).expect("valid");
        let template = &specs.fleets[0].groups[0].template;
        let serialized: RunInstancesRequest =
            serde_json::from_value(serde_json::to_value(template).unwrap()).expect("wire shape");
        let typed = template.to_request();
        assert_eq!(typed.request, serialized);
        assert!(typed.password.is_none());
        assert_eq!(typed.request.tag_specification.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn the_password_stays_a_reference() {
        let yaml = "fleets:\n  - name: pw\n    region: ap-guangzhou\n    groups:\n      - name: g\n        replicas: 1\n        zones: [ap-guangzhou-3]\n        template:\n          ImageId: img-pmqg1cw7\n          LoginSettings:\n            Password: {fromEnv: PW}\n";
        let specs = crate::load_str("pw.yaml", yaml).expect("valid");
        let typed = specs.fleets[0].groups[0].template.to_request();
        assert_eq!(typed.password.as_ref().and_then(SecretRef::env_var), Some("PW"));
        assert!(typed.request.login_settings.is_none(), "no password value, no empty settings");
    }
}
