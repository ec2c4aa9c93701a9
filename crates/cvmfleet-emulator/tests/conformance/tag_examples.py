#!/usr/bin/env python3
"""Conformance check of the emulator's Tag service and DescribeRegions with an independent
client: Tencent's official Python SDK (tencentcloud-sdk-python-common + -cvm + -tag), unmodified.

The Tag client signs with the `tag` credential scope and version 2018-08-13 and is pointed at the
same host:port as the CVM client; the emulator tells the two apart by the scope. Checks, in order:
DescribeRegions (CVM, no region); DescribeInstances' tag filters (`tag-key`, `tag-value`,
`tag:<key>`, AND across filters, OR within one) and their limits; TagResources (with a failing
resource), UnTagResources and ModifyResourceTags, each seen at once by DescribeInstances;
DescribeResourcesByTags across regions and pages, DescribeResourceTagsByResourceIds and
GetResources; the Tag client over GET, with v1 HmacSHA256, with and without a region; and an
error reaching the SDK as an exception with its code.

Usage: tag_examples.py HOST:PORT   (credentials from TENCENTCLOUD_SECRET_ID / _KEY)
Prints a JSON report; exit status 0 when every check passed, else the first failure on stderr.
"""

import json
import os
import sys

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client
from tencentcloud.cvm.v20170312 import models as cvm_models
from tencentcloud.tag.v20180813 import models as tag_models
from tencentcloud.tag.v20180813 import tag_client


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def profile(endpoint, method="POST", sign_method="TC3-HMAC-SHA256"):
    http = HttpProfile(protocol="http", endpoint=endpoint, reqMethod=method)
    return ClientProfile(httpProfile=http, signMethod=sign_method)


def request(model, params):
    r = model()
    r.from_json_string(json.dumps(params))
    return r


def name(region, instance_id):
    return "qcs::cvm:%s:uin/:instance/%s" % (region, instance_id)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint = sys.argv[1]
    cred = credential.Credential(os.environ["TENCENTCLOUD_SECRET_ID"], os.environ["TENCENTCLOUD_SECRET_KEY"])
    cvm = {r: cvm_client.CvmClient(cred, r, profile(endpoint)) for r in ("ap-guangzhou", "ap-hongkong")}
    # The Tag service takes no region ("本接口不需要传递此参数"): the SDK then sends none.
    tag = tag_client.TagClient(cred, "", profile(endpoint))
    report = []

    # DescribeRegions, from a CVM client without a region.
    regions = cvm_client.CvmClient(cred, "", profile(endpoint)).DescribeRegions(cvm_models.DescribeRegionsRequest())
    listed = [r.Region for r in regions.RegionSet]
    check("ap-guangzhou" in listed and regions.TotalCount == len(listed), "DescribeRegions: %r" % listed)
    check(all(r.RegionState == "AVAILABLE" and r.RegionName for r in regions.RegionSet), "RegionInfo fields")
    report.append({"check": "DescribeRegions", "regions": listed})

    def run(region, zone, count, fleet):
        params = {
            "Placement": {"Zone": zone},
            "ImageId": "img-pmqg1cw7",
            "InstanceCount": count,
            "TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "fleet", "Value": fleet}]}],
        }
        return cvm[region].RunInstances(request(cvm_models.RunInstancesRequest, params)).InstanceIdSet

    web = run("ap-guangzhou", "ap-guangzhou-3", 3, "web")
    db = run("ap-guangzhou", "ap-guangzhou-4", 2, "db")
    hk = run("ap-hongkong", "ap-hongkong-1", 2, "web")

    def instances(region, filters):
        params = {"Filters": filters, "Limit": 100}
        response = cvm[region].DescribeInstances(request(cvm_models.DescribeInstancesRequest, params))
        return [i.InstanceId for i in response.InstanceSet]

    # The tag filters of DescribeInstances and their limits.
    check(instances("ap-guangzhou", [{"Name": "tag-key", "Values": ["fleet"]}]) == web + db, "tag-key")
    check(instances("ap-guangzhou", [{"Name": "tag-value", "Values": ["db"]}]) == db, "tag-value")
    check(instances("ap-guangzhou", [{"Name": "tag:fleet", "Values": ["web", "db"]}]) == web + db, "OR within")
    both = [{"Name": "tag:fleet", "Values": ["web", "db"]}, {"Name": "zone", "Values": ["ap-guangzhou-4"]}]
    check(instances("ap-guangzhou", both) == db, "AND across filters")
    for filters, code in [
        ([{"Name": "tag:fleet", "Values": ["a", "b", "c", "d", "e", "f"]}], "InvalidFilterValue.LimitExceeded"),
        ([{"Name": "tag-key", "Values": ["fleet"]}] * 11, "InvalidParameterValue.LimitExceeded"),
    ]:
        try:
            instances("ap-guangzhou", filters)
            raise Failure("filters over the limits were accepted")
        except TencentCloudSDKException as e:
            check(e.get_code() == code, "filter limit code %r" % e.get_code())
    report.append({"check": "DescribeInstances tag filters", "limits": "ok"})

    # TagResources: one failing resource among good ones, in two regions.
    resources = [name("ap-guangzhou", i) for i in web] + [name("ap-hongkong", hk[0]), name("ap-guangzhou", "ins-00000000")]
    params = {"ResourceList": resources, "Tags": [{"TagKey": "cvmfleet:project", "TagValue": "shop"}]}
    response = tag.TagResources(request(tag_models.TagResourcesRequest, params))
    failed = [(f.Resource, f.Code) for f in response.FailedResources]
    check(failed == [(resources[-1], "InvalidParameterValue.ResourceIdInvalid")], "FailedResources %r" % failed)
    check(bool(response.RequestId), "TagResources without RequestId")
    project = [{"Name": "tag:cvmfleet:project", "Values": ["shop"]}]
    check(instances("ap-guangzhou", project) == web, "TagResources not seen by DescribeInstances")
    check(instances("ap-hongkong", project) == [hk[0]], "TagResources in another region")

    # UnTagResources and ModifyResourceTags, seen at once too.
    params = {"ResourceList": [name("ap-guangzhou", web[2])], "TagKeys": ["cvmfleet:project"]}
    response = tag.UnTagResources(request(tag_models.UnTagResourcesRequest, params))
    check(response.FailedResources == [], "UnTagResources failed %r" % response.FailedResources)
    check(instances("ap-guangzhou", project) == web[:2], "UnTagResources not seen")
    params = {
        "Resource": name("ap-guangzhou", web[0]),
        "ReplaceTags": [{"TagKey": "owner", "TagValue": "ops"}],
        "DeleteTags": [{"TagKey": "fleet"}],
    }
    check(bool(tag.ModifyResourceTags(request(tag_models.ModifyResourceTagsRequest, params)).RequestId), "Modify")
    listed = cvm["ap-guangzhou"].DescribeInstances(request(cvm_models.DescribeInstancesRequest, {"InstanceIds": [web[0]]}))
    tags = sorted((t.Key, t.Value) for t in listed.InstanceSet[0].Tags)
    check(tags == [("cvmfleet:project", "shop"), ("owner", "ops")], "ModifyResourceTags: %r" % tags)
    report.append({"check": "TagResources/UnTagResources/ModifyResourceTags", "failed": len(failed)})

    # DescribeResourcesByTags: every region, two pages of one.
    rows = []
    for offset in (0, 1, 2):
        params = {
            "TagFilters": [{"TagKey": "cvmfleet:project", "TagValue": ["shop"]}],
            "ServiceType": "cvm",
            "ResourcePrefix": "instance",
            "Offset": offset,
            "Limit": 1,
        }
        page = tag.DescribeResourcesByTags(request(tag_models.DescribeResourcesByTagsRequest, params))
        check(page.TotalCount == 3, "DescribeResourcesByTags TotalCount %r" % page.TotalCount)
        rows.extend((r.ResourceRegion, r.ResourceId) for r in page.Rows)
    expected = [("ap-guangzhou", web[0]), ("ap-guangzhou", web[1]), ("ap-hongkong", hk[0])]
    check(rows == expected, "DescribeResourcesByTags rows %r" % rows)
    report.append({"check": "DescribeResourcesByTags", "rows": len(rows)})

    params = {"ServiceType": "cvm", "ResourcePrefix": "instance", "ResourceRegion": "ap-guangzhou", "ResourceIds": [web[1]]}
    by_ids = tag.DescribeResourceTagsByResourceIds(request(tag_models.DescribeResourceTagsByResourceIdsRequest, params))
    pairs = sorted((t.TagKey, t.TagValue) for t in by_ids.Tags)
    check(pairs == [("cvmfleet:project", "shop"), ("fleet", "web")], "DescribeResourceTagsByResourceIds %r" % pairs)
    got = tag.GetResources(request(tag_models.GetResourcesRequest, {"TagFilters": [{"TagKey": "owner"}]}))
    check([m.Resource.rsplit("/", 1)[1] for m in got.ResourceTagMappingList] == [web[0]], "GetResources")
    report.append({"check": "DescribeResourceTagsByResourceIds/GetResources", "tags": len(pairs)})

    # The Tag client in the other transports, and with a region given anyway.
    for label, client in [
        ("GET TC3-HMAC-SHA256", tag_client.TagClient(cred, "", profile(endpoint, "GET"))),
        ("GET HmacSHA256", tag_client.TagClient(cred, "", profile(endpoint, "GET", "HmacSHA256"))),
        ("POST TC3 with a region", tag_client.TagClient(cred, "ap-guangzhou", profile(endpoint))),
    ]:
        params = {"ResourceList": [name("ap-guangzhou", db[0])], "Tags": [{"TagKey": "via", "TagValue": "sdk"}]}
        check(client.TagResources(request(tag_models.TagResourcesRequest, params)).FailedResources == [], label)
        report.append({"check": "TagResources", "transport": label})
    check(instances("ap-guangzhou", [{"Name": "tag:via", "Values": ["sdk"]}]) == [db[0]], "tagged over GET/v1")

    # An error reaches the SDK as an exception with its code and RequestId.
    try:
        params = {"ResourceList": [name("ap-guangzhou", db[1])], "Tags": [{"TagKey": "qcloud:x", "TagValue": "v"}]}
        tag.TagResources(request(tag_models.TagResourcesRequest, params))
        raise Failure("a reserved tag key was accepted")
    except TencentCloudSDKException as e:
        check(e.get_code() == "InvalidParameter.ReservedTagKey", "error code %r" % e.get_code())
        check(bool(e.get_request_id()), "error without RequestId")
        report.append({"check": "error", "code": e.get_code()})

    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Failure, TencentCloudSDKException) as e:
        print("conformance failure: %s" % e, file=sys.stderr)
        sys.exit(1)
