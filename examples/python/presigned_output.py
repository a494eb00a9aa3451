#!/usr/bin/env python3
"""A job whose video goes straight to the client's own bucket: the client presigns a PUT
with boto3, submits the job with it (protocol 1.1 "output"), waits for the result and
downloads the video with a presigned GET. The worker never holds credentials for the bucket.

    AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… python3 presigned_output.py \\
        --url amqp://guest:guest@127.0.0.1:5679/%2f --endpoint https://s3.eu-west-1.amazonaws.com \\
        --bucket my-videos --key fox.mp4 --prompt "A red fox" --save fox.mp4

Prints the result's output_uri, output_bytes and output_sha256, and checks the downloaded
file against them.
"""
import argparse
import hashlib
import os
import sys
import urllib.request

import boto3
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from genworker_client import GenworkerClient  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5679/%2f")
    p.add_argument("--prefix", default="genworker")
    p.add_argument("--endpoint", help="the store's endpoint (default: AWS)")
    p.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    p.add_argument("--path-style", action="store_true", help="path-style addressing (MinIO, SeaweedFS)")
    p.add_argument("--bucket", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--task", default="t2v-A14B")
    p.add_argument("--prompt", default="A red fox running through snow")
    p.add_argument("--id")
    p.add_argument("--expires", type=int, default=3600, help="seconds the presigned URLs live")
    p.add_argument("--save", help="where to download the video")
    a = p.parse_args()

    s3 = boto3.client("s3", endpoint_url=a.endpoint, region_name=a.region,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path" if a.path_style else "auto"}))
    put = s3.generate_presigned_url("put_object", Params={"Bucket": a.bucket, "Key": a.key, "ContentType": "video/mp4"},
                                    ExpiresIn=a.expires)
    get = s3.generate_presigned_url("get_object", Params={"Bucket": a.bucket, "Key": a.key}, ExpiresIn=a.expires)

    client = GenworkerClient(a.url, prefix=a.prefix)
    job_id = client.submit(a.task, {"prompt": a.prompt}, job_id=a.id,
                           extra={"output": {"put_url": put, "headers": {"Content-Type": "video/mp4"}}})
    result = client.wait(job_id)
    client.close()
    print("%s %s %s" % (job_id, result["event"], result.get("message", "")))
    if result["event"] != "completed":
        return 1
    print("output_uri    %s\noutput_bytes  %s\noutput_sha256 %s" % (result.get("output_uri"), result.get("output_bytes"),
                                                                   result.get("output_sha256")))
    data = urllib.request.urlopen(get).read()
    if a.save:
        with open(a.save, "wb") as f:
            f.write(data)
    ok = len(data) == result.get("output_bytes") and hashlib.sha256(data).hexdigest() == result.get("output_sha256")
    print("downloaded %d bytes: %s" % (len(data), "matches the result" if ok else "DOES NOT match the result"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
