#!/usr/bin/env python3
"""Conformance check of the cvmfleet CVM emulator with an independent client: Tencent's official
Python SDK (tencentcloud-sdk-python-common + tencentcloud-sdk-python-cvm).

Runs the five RunInstances examples of the API reference (the seed document) against the
emulator, unmodified, over POST with TC3-HMAC-SHA256; repeats example 1 over GET (TC3) and with
the legacy v1 signatures (HmacSHA256 over GET, HmacSHA1 over POST); lists the instances; and
checks that an error answer reaches the SDK as an exception with its code.

Usage: seed_examples.py HOST:PORT   (credentials from TENCENTCLOUD_SECRET_ID / _KEY)
Exit status 0 when every check passed; otherwise the first failure is printed to stderr.
"""

import json
import os
import sys

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client, models

# The five examples of the RunInstances reference, parameter for parameter.
EXAMPLES = [
    (
        "ap-guangzhou",
        {"Placement": {"Zone": "ap-guangzhou-2"}, "ImageId": "img-pmqg1cw7"},
        1,
    ),
    (
        "ap-guangzhou",
        {
            "Placement": {"Zone": "ap-guangzhou-2"},
            "InstanceChargeType": "PREPAID",
            "InstanceChargePrepaid": {"Period": 1, "RenewFlag": "NOTIFY_AND_AUTO_RENEW"},
            "ImageId": "img-pmqg1cw7",
            "InstanceType": "S1.SMALL1",
            "SystemDisk": {"DiskType": "LOCAL_BASIC", "DiskSize": 50},
            "DataDisks": [{"DiskType": "LOCAL_BASIC", "DiskSize": 100}],
            "InternetAccessible": {
                "InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR",
                "InternetMaxBandwidthOut": 10,
                "PublicIpAssigned": True,
            },
            "InstanceName": "QCLOUD-TEST",
            "LoginSettings": {"Password": "Qcloud@TestApi123++"},
            "EnhancedService": {"SecurityService": {"Enabled": True}, "MonitorService": {"Enabled": True}},
            "InstanceCount": 1,
        },
        1,
    ),
    (
        "ap-guangzhou",
        {
            "Placement": {"Zone": "ap-guangzhou-2"},
            "InstanceChargeType": "POSTPAID_BY_HOUR",
            "ImageId": "img-pmqg1cw7",
            "InstanceType": "S2.SMALL1",
            "SystemDisk": {"DiskType": "LOCAL_BASIC", "DiskSize": 50},
            "DataDisks": [{"DiskType": "LOCAL_BASIC", "DiskSize": 100}],
            "InternetAccessible": {
                "InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR",
                "InternetMaxBandwidthOut": 10,
                "PublicIpAssigned": True,
            },
            "InstanceName": "QCLOUD-TEST",
            "LoginSettings": {"Password": "Qcloud@TestApi123++"},
            "EnhancedService": {"SecurityService": {"Enabled": True}, "MonitorService": {"Enabled": True}},
            "InstanceCount": 1,
        },
        1,
    ),
    (
        "ap-guangzhou",
        {
            "Placement": {"Zone": "ap-guangzhou-2", "HostIds": ["host-q88gab4i"]},
            "InstanceChargeType": "CDHPAID",
            "ImageId": "img-pmqg1cw7",
            "InstanceType": "CDH_1C1G",
            "SystemDisk": {"DiskType": "LOCAL_BASIC", "DiskSize": 50},
            "DataDisks": [{"DiskType": "LOCAL_BASIC", "DiskSize": 100}],
            "InternetAccessible": {
                "InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR",
                "InternetMaxBandwidthOut": 10,
                "PublicIpAssigned": True,
            },
            "InstanceName": "QCLOUD-TEST",
            "LoginSettings": {"Password": "Qcloud@TestApi123++"},
            "EnhancedService": {"SecurityService": {"Enabled": True}, "MonitorService": {"Enabled": True}},
            "InstanceCount": 1,
        },
        1,
    ),
    (
        "ap-hongkong",
        {
            "InstanceType": "S1.SMALL2",
            "SystemDisk": {"DiskType": "CLOUD_BASIC", "DiskSize": 50},
            "Placement": {"Zone": "ap-hongkong-1"},
            "ImageId": "img-dkwyg6sr",
            "VirtualPrivateCloud": {
                "SubnetId": "subnet-dcs9x3gz",
                "VpcId": "vpc-1urkhbj4",
                "PrivateIpAddresses": ["10.0.0.18", "10.0.0.19"],
            },
            "InstanceCount": 2,
        },
        2,
    ),
]


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def make_client(endpoint, cred, region, method="POST", sign_method="TC3-HMAC-SHA256"):
    http = HttpProfile(protocol="http", endpoint=endpoint, reqMethod=method)
    profile = ClientProfile(httpProfile=http, signMethod=sign_method)
    return cvm_client.CvmClient(cred, region, profile)


def run_instances(client, params):
    request = models.RunInstancesRequest()
    request.from_json_string(json.dumps(params))
    return client.RunInstances(request)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint = sys.argv[1]
    cred = credential.Credential(os.environ["TENCENTCLOUD_SECRET_ID"], os.environ["TENCENTCLOUD_SECRET_KEY"])
    report = []

    created = {}
    for number, (region, params, count) in enumerate(EXAMPLES, start=1):
        response = run_instances(make_client(endpoint, cred, region), params)
        ids = response.InstanceIdSet
        check(ids is not None and len(ids) == count, "example %d: InstanceIdSet %r" % (number, ids))
        check(all(i.startswith("ins-") and len(i) == 12 for i in ids), "example %d: ids %r" % (number, ids))
        check(bool(response.RequestId), "example %d: no RequestId" % number)
        created.setdefault(region, []).extend(ids)
        report.append({"example": number, "transport": "POST TC3-HMAC-SHA256", "InstanceIdSet": ids})

    for label, method, sign_method in [
        ("GET TC3-HMAC-SHA256", "GET", "TC3-HMAC-SHA256"),
        ("GET HmacSHA256", "GET", "HmacSHA256"),
        ("POST HmacSHA1", "POST", "HmacSHA1"),
    ]:
        client = make_client(endpoint, cred, "ap-guangzhou", method, sign_method)
        response = run_instances(client, EXAMPLES[0][1])
        check(len(response.InstanceIdSet or []) == 1, "example 1 over %s: %r" % (label, response.InstanceIdSet))
        created["ap-guangzhou"].extend(response.InstanceIdSet)
        report.append({"example": 1, "transport": label, "InstanceIdSet": response.InstanceIdSet})

    for region, ids in created.items():
        request = models.DescribeInstancesRequest()
        request.from_json_string(json.dumps({"InstanceIds": ids, "Limit": 100}))
        response = make_client(endpoint, cred, region).DescribeInstances(request)
        listed = sorted(i.InstanceId for i in response.InstanceSet)
        check(listed == sorted(ids), "DescribeInstances in %s: %r != %r" % (region, listed, ids))
        check(response.TotalCount == len(ids), "DescribeInstances TotalCount %r" % response.TotalCount)
        for instance in response.InstanceSet:
            check(instance.Placement is not None and instance.Placement.Zone, "no Placement on %s" % instance.InstanceId)
            check(instance.InstanceState in ("PENDING", "RUNNING"), "state %r" % instance.InstanceState)
    request = models.DescribeInstancesRequest()
    request.from_json_string(json.dumps({"Filters": [{"Name": "private-ip-address", "Values": ["10.0.0.19"]}]}))
    response = make_client(endpoint, cred, "ap-hongkong", "GET").DescribeInstances(request)
    check(response.TotalCount == 1, "private-ip-address filter over GET: %r" % response.TotalCount)
    check(response.InstanceSet[0].VirtualPrivateCloud.SubnetId == "subnet-dcs9x3gz", "subnet of example 5")
    report.append({"check": "DescribeInstances", "regions": sorted(created), "hongkong_ip_filter": "ok"})

    # Errors reach the SDK as exceptions with their code and RequestId (this needs the exact
    # `Content-Type: application/json`).
    wrong_zone = dict(EXAMPLES[0][1], Placement={"Zone": "ap-hongkong-1"})
    try:
        run_instances(make_client(endpoint, cred, "ap-guangzhou"), wrong_zone)
        raise Failure("a zone of another region was accepted")
    except TencentCloudSDKException as e:
        check(e.get_code() == "InvalidZone.MismatchRegion", "error code %r" % e.get_code())
        check(bool(e.get_request_id()), "error without RequestId")
        report.append({"check": "error", "code": e.get_code()})
    bad = credential.Credential(os.environ["TENCENTCLOUD_SECRET_ID"], "not-the-key")
    try:
        make_client(endpoint, bad, "ap-guangzhou").DescribeZones(models.DescribeZonesRequest())
        raise Failure("a wrong key was accepted")
    except TencentCloudSDKException as e:
        check(e.get_code() == "AuthFailure.SignatureFailure", "error code %r" % e.get_code())
        report.append({"check": "error", "code": e.get_code()})

    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Failure, TencentCloudSDKException) as e:
        print("conformance failure: %s" % e, file=sys.stderr)
        sys.exit(1)
