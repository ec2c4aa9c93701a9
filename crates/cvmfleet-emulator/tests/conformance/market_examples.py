#!/usr/bin/env python3
"""Conformance of the emulator's stock and price actions with Tencent's official Python SDK
(issues 13 and 14).

Runs the reference's DescribeZoneInstanceConfigInfos example and its three
InquiryPriceRunInstances examples through the SDK, with every SDK warning made an error (the
SDK warns about response fields its models do not know, so an extra field fails the check);
sells an offering out through the admin API and checks that RunInstances raises the sold-out
code and DescribeZoneInstanceConfigInfos shows it; creates SPOTPAID instances with MinCount and
InstanceMarketOptions from the SDK's own models.

Usage: market_examples.py HOST:PORT   (credentials from TENCENTCLOUD_SECRET_ID / _KEY)
Prints a JSON report on success; otherwise the first failure goes to stderr, exit status 1.
"""

import json
import os
import sys
import urllib.request
import warnings

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client, models

# examples.json, DescribeZoneInstanceConfigInfos example 1.
ZONE_CONFIG_EXAMPLE = {
    "Filters": [
        {"Values": ["POSTPAID_BY_HOUR"], "Name": "instance-charge-type"},
        {"Values": ["ap-guangzhou-6"], "Name": "zone"},
    ]
}

_COMMON = {
    "SystemDisk": {"DiskSize": 50, "DiskType": "CLOUD_PREMIUM"},
    "InstanceCount": 1,
    "Placement": {"Zone": "ap-shanghai-2"},
    "LoginSettings": {"Password": "Qcloud@TestApi123++"},
    "ImageId": "img-pmqg1cw7",
    "EnhancedService": {"SecurityService": {"Enabled": True}, "MonitorService": {"Enabled": True}},
    # The hourly example writes "10" as a string; the API's type is Integer.
    "InternetAccessible": {
        "PublicIpAssigned": True,
        "InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR",
        "InternetMaxBandwidthOut": 10,
    },
    "InstanceName": "QCLOUD-TEST",
    "InstanceType": "S5.16XLARGE256",
    "DataDisks": [{"DiskSize": 100, "DiskType": "CLOUD_PREMIUM"}],
}

# examples.json, InquiryPriceRunInstances examples 1-3.
PREPAID_EXAMPLE = dict(
    _COMMON,
    InstanceChargeType="PREPAID",
    InstanceChargePrepaid={"RenewFlag": "NOTIFY_AND_AUTO_RENEW", "Period": 1},
)
HOURLY_EXAMPLE = dict(_COMMON, InstanceChargeType="POSTPAID_BY_HOUR")
SIMPLEST_EXAMPLE = {"Placement": {"Zone": "ap-shanghai-2"}, "ImageId": "img-pmqg1cw7"}


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def make_client(endpoint, cred, region, method="POST"):
    http = HttpProfile(protocol="http", endpoint=endpoint, reqMethod=method)
    return cvm_client.CvmClient(cred, region, ClientProfile(httpProfile=http))


def call(client, action, params):
    request = getattr(models, action + "Request")()
    request.from_json_string(json.dumps(params))
    return getattr(client, action)(request)


def admin(endpoint, method, path, body):
    request = urllib.request.Request(
        "http://%s%s" % (endpoint, path),
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint = sys.argv[1]
    cred = credential.Credential(os.environ["TENCENTCLOUD_SECRET_ID"], os.environ["TENCENTCLOUD_SECRET_KEY"])
    guangzhou = make_client(endpoint, cred, "ap-guangzhou")
    shanghai = make_client(endpoint, cred, "ap-shanghai")
    report = []

    response = call(guangzhou, "DescribeZoneInstanceConfigInfos", ZONE_CONFIG_EXAMPLE)
    items = response.InstanceTypeQuotaSet
    check(items, "no InstanceTypeQuotaSet")
    for item in items:
        check(item.Zone == "ap-guangzhou-6" and item.InstanceChargeType == "POSTPAID_BY_HOUR", item.InstanceType)
        check(item.Status == "SELL" and item.StatusCategory == "EnoughStock", item.Status)
        check(isinstance(item.Cpu, int) and isinstance(item.Memory, int), "Cpu/Memory of %s" % item.InstanceType)
        check(item.Price is not None and item.Price.UnitPriceDiscount > 0, "price of %s" % item.InstanceType)
        check(item.Price.ChargeUnit == "HOUR", "ChargeUnit %r" % item.Price.ChargeUnit)
        check(item.Externals is not None and item.LocalDiskTypeList == [], "Externals/LocalDiskTypeList")
    report.append({"check": "DescribeZoneInstanceConfigInfos example", "items": len(items)})

    prepaid = call(shanghai, "InquiryPriceRunInstances", PREPAID_EXAMPLE).Price
    hourly = call(shanghai, "InquiryPriceRunInstances", HOURLY_EXAMPLE).Price
    simplest = call(shanghai, "InquiryPriceRunInstances", SIMPLEST_EXAMPLE).Price
    p, h = prepaid.InstancePrice, hourly.InstancePrice
    check(p.OriginalPrice > 0 and 0 < p.DiscountPrice <= p.OriginalPrice and p.UnitPrice == 0, "prepaid %r" % vars(p))
    check(h.UnitPrice > 0 and 0 < h.UnitPriceDiscount <= h.UnitPrice and h.OriginalPrice == 0, "hourly %r" % vars(h))
    check(p.DiscountPrice < 730 * h.UnitPriceDiscount, "a prepaid month must cost less than 730 hours")
    for band in (prepaid.BandwidthPrice, hourly.BandwidthPrice):
        check(band.UnitPrice == 0.8 and band.ChargeUnit == "GB", "traffic price %r" % vars(band))
    check(simplest.InstancePrice.UnitPrice > 0 and simplest.BandwidthPrice.UnitPrice == 0, "simplest example")
    check(simplest.InstancePrice.UnitPrice < h.UnitPrice, "S1.SMALL1 must cost less than S5.16XLARGE256")
    report.append({
        "check": "InquiryPriceRunInstances examples",
        "prepaid_month": p.DiscountPrice,
        "hourly": h.UnitPriceDiscount,
        "simplest_hourly": simplest.InstancePrice.UnitPriceDiscount,
    })

    # Sold out, through the admin API: RunInstances raises the code, the listing shows it.
    admin(endpoint, "PUT", "/_emulator/stock",
          [{"zone": "ap-guangzhou-6", "instance_type": "S5.MEDIUM2", "charge_type": "POSTPAID_BY_HOUR", "available": 0}])
    run = {"Placement": {"Zone": "ap-guangzhou-6"}, "ImageId": "img-pmqg1cw7", "InstanceType": "S5.MEDIUM2"}
    try:
        call(guangzhou, "RunInstances", run)
        raise Failure("a sold-out offering launched")
    except TencentCloudSDKException as e:
        check(e.get_code() == "ResourcesSoldOut.SpecifiedInstanceType", "code %r" % e.get_code())
        check(bool(e.get_request_id()), "no RequestId")
        report.append({"check": "sold out", "code": e.get_code()})
    listed = call(guangzhou, "DescribeZoneInstanceConfigInfos", {"Filters": [
        {"Name": "zone", "Values": ["ap-guangzhou-6"]},
        {"Name": "instance-type", "Values": ["S5.MEDIUM2"]},
    ]}).InstanceTypeQuotaSet
    states = sorted((i.InstanceChargeType, i.Status, i.StatusCategory) for i in listed)
    check(("POSTPAID_BY_HOUR", "SOLD_OUT", "WithoutStock") in states, "listing %r" % states)

    # Spot with MinCount and market options, from the SDK's own models.
    admin(endpoint, "PUT", "/_emulator/stock",
          {"zone": "ap-guangzhou-6", "instance_type": "SA2.MEDIUM4", "charge_type": "SPOTPAID", "available": 2})
    spot = dict(run, InstanceType="SA2.MEDIUM4", InstanceChargeType="SPOTPAID", InstanceCount=3, MinCount=1,
                InstanceMarketOptions={"MarketType": "spot", "SpotOptions": {"MaxPrice": "1.00", "SpotInstanceType": "one-time"}})
    ids = call(guangzhou, "RunInstances", spot).InstanceIdSet
    check(len(ids) == 2, "MinCount delivery %r" % ids)
    listed = call(guangzhou, "DescribeInstances", {"InstanceIds": ids}).InstanceSet
    check(all(i.InstanceChargeType == "SPOTPAID" for i in listed), "charge types")
    report.append({"check": "spot MinCount", "delivered": len(ids)})

    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    warnings.simplefilter("error")
    try:
        sys.exit(main())
    except (Failure, TencentCloudSDKException, Warning) as e:
        print("conformance failure: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
