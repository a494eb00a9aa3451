#!/usr/bin/env python3
"""What the private S3 server (scripts/s3.sh) does, tried against it: prints one line per fact.

    scripts/s3.sh start && .run/venv-s3/bin/python scripts/s3-probe.py

docs/storage.md ("Testing against SeaweedFS") records the answers for the weed version that
scripts/s3.sh pins; run this again after changing it. It writes objects under probe/ in the
test bucket and removes them. Needs boto3 (the venv of scripts/s3.sh has it) and curl.
"""

import base64
import hashlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

PORT = int(os.environ.get("GENWORKER_S3_PORT", "8533"))
URL = os.environ.get("GENWORKER_S3_URL", f"http://127.0.0.1:{PORT}")
REGION = "us-east-1"
ADMIN = ("genworker-test", "genworker-test-secret-not-for-production")
READONLY = ("genworker-readonly", "genworker-readonly-secret-not-for-production")
LIMITED = ("genworker-limited", "genworker-limited-secret-not-for-production")
BUCKET = "genworker-test"
PREFIX = f"probe/{uuid.uuid4().hex[:8]}/"


def client(keys=ADMIN, style="path", endpoint=URL, **config):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=keys[0], aws_secret_access_key=keys[1],
        config=Config(signature_version="s3v4", s3={"addressing_style": style}, retries={"max_attempts": 1}, **config),
    )


def error(call):
    """Runs call; returns 'ok' or 'HTTP status Code'."""
    try:
        call()
        return "ok"
    except ClientError as e:
        return f"{e.response['ResponseMetadata']['HTTPStatusCode']} {e.response['Error'].get('Code')}"
    except Exception as e:  # noqa: BLE001 - the probe reports whatever happened
        return f"{type(e).__name__}: {str(e)[:100]}"


def signed_curl(url, *args):
    """curl --aws-sigv4 as the admin identity (curl resolves *.localhost itself): 'status body'."""
    out = subprocess.run(["curl", "-s", "-w", " %{http_code}", "--aws-sigv4", f"aws:amz:{REGION}:s3",
                          "--user", f"{ADMIN[0]}:{ADMIN[1]}", *args, url], capture_output=True, text=True).stdout
    body, _, status = out.rpartition(" ")
    return f"{status} {code_of(body.encode()) if '<Code>' in body else body[:40]!r}"


def http(method, url, data=None, headers=None):
    """A plain request (no signing, e.g. a presigned URL): (status, headers, body)."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def code_of(body):
    text = body.decode(errors="replace")
    return text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else text[:60]


def fact(name, result):
    print(f"{name:<56} {result}")


def main():
    s3 = client()
    key = PREFIX + "hello.txt"
    body = b"hello, genworker\n"
    print(f"weed: {subprocess.run([os.path.join(os.path.dirname(sys.executable), 'weed'), 'version'], capture_output=True, text=True).stdout.strip()}")
    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}, endpoint {URL}\n")

    # Addressing and header auth.
    headers = []

    def record(request, **_):
        headers.append(dict(request.headers))

    s3.meta.events.register("before-send.s3.PutObject", record)
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="text/plain", Metadata={"job": "j1"})
    s3.meta.events.unregister("before-send.s3.PutObject", record)
    sent = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in headers[0].items()}
    fact("boto3 put_object sends", f"x-amz-content-sha256 {sent.get('x-amz-content-sha256', '-')[:16]}..., "
         f"checksum headers {[k for k in sent if k.startswith('x-amz-checksum') or k == 'content-md5']}")
    fact("path-style PUT (SigV4 header auth)", f"ok, ETag {put['ETag']}")
    fact("single PUT ETag == MD5 hex", put["ETag"].strip('"') == hashlib.md5(body).hexdigest())
    fact("path-style GET", s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body)
    virt = client(style="virtual", endpoint=f"http://localhost:{PORT}")
    fact("virtual-host GET, boto3 (BUCKET.localhost)", error(lambda: virt.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    fact("virtual-host GET, curl (BUCKET.localhost)", signed_curl(f"http://{BUCKET}.localhost:{PORT}/{key}"))
    fact("virtual-host GET, curl (BUCKET.s3.test, not the domainName)",
         signed_curl(f"http://{BUCKET}.s3.test:{PORT}/{key}", "--connect-to", f"::127.0.0.1:{PORT}"))
    fact("path-style GET, curl, Host localhost", signed_curl(f"http://localhost:{PORT}/{BUCKET}/{key}"))
    virt_ip = client(style="virtual")
    sent = []
    virt_ip.meta.events.register("before-send.s3.GetObject", lambda request, **_: sent.append(request.url))
    fact("boto3 virtual style on http://127.0.0.1", f"{error(lambda: virt_ip.get_object(Bucket=BUCKET, Key=key))}, sent to {sent[0] if sent else None}")
    big = os.urandom(10 * 1024 * 1024)   # over the filer's 4 MiB chunk size
    put = s3.put_object(Bucket=BUCKET, Key=PREFIX + "big.bin", Body=big)
    fact("10 MiB single PUT ETag == MD5 hex", f"{put['ETag'].strip(chr(34)) == hashlib.md5(big).hexdigest()} ({put['ETag']})")

    # HEAD and Range.
    head = s3.head_object(Bucket=BUCKET, Key=key)
    fact("HEAD object", f"ContentLength {head['ContentLength']}, ContentType {head['ContentType']}, "
         f"Metadata {head['Metadata']}, ETag {head['ETag']}, LastModified set {bool(head.get('LastModified'))}")
    fact("HEAD missing key", error(lambda: s3.head_object(Bucket=BUCKET, Key=PREFIX + "nope")))
    r = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-4")
    fact("Range GET bytes=0-4", f"{r['ResponseMetadata']['HTTPStatusCode']} {r['ContentRange']} {r['Body'].read()!r}")
    r = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=-3")
    fact("Range GET bytes=-3 (suffix)", f"{r['ResponseMetadata']['HTTPStatusCode']} {r['ContentRange']} {r['Body'].read()!r}")
    r = s3.get_object(Bucket=BUCKET, Key=PREFIX + "big.bin", Range="bytes=5000000-5000009")
    fact("Range GET across a 4 MiB chunk edge", r["Body"].read() == big[5000000:5000010])
    fact("Range GET past the end (bytes=1000-)", error(lambda: s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=1000-")))

    # Missing things.
    fact("GET missing key", error(lambda: s3.get_object(Bucket=BUCKET, Key=PREFIX + "nope")))
    fact("GET in missing bucket", error(lambda: s3.get_object(Bucket="genworker-no-such-bucket", Key="k")))
    fact("PUT in missing bucket (autoCreateBucket=false)", error(lambda: s3.put_object(Bucket="genworker-no-such-bucket", Key="k", Body=b"x")))
    fact("HEAD missing bucket", error(lambda: s3.head_bucket(Bucket="genworker-no-such-bucket")))
    fact("ListObjectsV2 missing bucket", error(lambda: s3.list_objects_v2(Bucket="genworker-no-such-bucket")))

    # Signatures and identities.
    wrong = client(keys=(ADMIN[0], "wrong-secret"))
    fact("wrong secret (header auth)", error(lambda: wrong.get_object(Bucket=BUCKET, Key=key)))
    unknown = client(keys=("no-such-key", "x"))
    fact("unknown access key", error(lambda: unknown.get_object(Bucket=BUCKET, Key=key)))
    st, _, b = http("GET", f"{URL}/{BUCKET}/{key}")
    fact("anonymous GET", f"{st} {code_of(b)}")
    ro = client(keys=READONLY)
    fact("read-only identity GET", error(lambda: ro.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    fact("read-only identity PUT", error(lambda: ro.put_object(Bucket=BUCKET, Key=PREFIX + "ro", Body=b"x")))
    lim = client(keys=LIMITED)
    fact("limited identity PUT+GET own bucket", error(lambda: (lim.put_object(Bucket="genworker-limited", Key=PREFIX + "l", Body=b"x"),
                                                                 lim.get_object(Bucket="genworker-limited", Key=PREFIX + "l"),
                                                                 lim.delete_object(Bucket="genworker-limited", Key=PREFIX + "l"))))
    fact("limited identity GET other bucket", error(lambda: lim.get_object(Bucket=BUCKET, Key=key)))
    fact("limited identity PUT other bucket", error(lambda: lim.put_object(Bucket=BUCKET, Key=PREFIX + "l", Body=b"x")))
    fact("limited identity ListBuckets", [b["Name"] for b in lim.list_buckets()["Buckets"]])
    fact("read-only identity ListBuckets", [b["Name"] for b in ro.list_buckets()["Buckets"]])

    # Presigned URLs.
    pkey = PREFIX + "presigned.txt"
    purl = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": pkey}, ExpiresIn=300)
    st, h, _ = http("PUT", purl, data=b"presigned body")
    fact("presigned PUT", f"{st} ETag {h.get('ETag')}")
    gurl = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": pkey}, ExpiresIn=300)
    st, _, b = http("GET", gurl)
    fact("presigned GET", f"{st} {b!r}")
    st, _, b = http("GET", gurl.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    fact("presigned GET, signature altered", f"{st} {code_of(b)}")
    st, _, b = http("GET", gurl.replace(pkey, PREFIX + "other.txt"))
    fact("presigned GET, other key", f"{st} {code_of(b)}")
    curl = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": pkey, "ContentType": "video/mp4"}, ExpiresIn=300)
    st, _, b = http("PUT", curl, data=b"x", headers={"Content-Type": "text/plain"})
    fact("presigned PUT signed for a Content-Type, sent another", f"{st} {code_of(b) if st >= 300 else ''}")
    eurl = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": pkey}, ExpiresIn=1)
    time.sleep(2.5)
    st, _, b = http("GET", eurl)
    message = b.decode(errors="replace").split("<Message>")[-1].split("</Message>")[0]
    fact("presigned GET after expiry", f"{st} {code_of(b)} ({message})")
    rourl = ro.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": pkey}, ExpiresIn=300)
    st, _, b = http("PUT", rourl, data=b"x")
    fact("presigned PUT by the read-only identity", f"{st} {code_of(b)}")

    # Conditional PUT.
    ckey = PREFIX + "cond.txt"
    fact("If-None-Match:* PUT, key absent", error(lambda: s3.put_object(Bucket=BUCKET, Key=ckey, Body=b"first", IfNoneMatch="*")))
    fact("If-None-Match:* PUT, key present", error(lambda: s3.put_object(Bucket=BUCKET, Key=ckey, Body=b"second", IfNoneMatch="*")))
    fact("  body after that", s3.get_object(Bucket=BUCKET, Key=ckey)["Body"].read())
    etag = s3.head_object(Bucket=BUCKET, Key=ckey)["ETag"]
    fact("If-Match:<etag> PUT, matching", error(lambda: s3.put_object(Bucket=BUCKET, Key=ckey, Body=b"third", IfMatch=etag)))
    fact("If-Match:<old etag> PUT, stale", error(lambda: s3.put_object(Bucket=BUCKET, Key=ckey, Body=b"fourth", IfMatch=etag)))
    fact("GET If-None-Match:<current etag>", error(lambda: s3.get_object(Bucket=BUCKET, Key=ckey,
                                                                           IfNoneMatch=s3.head_object(Bucket=BUCKET, Key=ckey)["ETag"])))

    # Checksums.
    sha = base64.b64encode(hashlib.sha256(b"checked").digest()).decode()
    r = s3.put_object(Bucket=BUCKET, Key=PREFIX + "sum.txt", Body=b"checked", ChecksumSHA256=sha)
    fact("x-amz-checksum-sha256 right", f"ok, echoed {r.get('ChecksumSHA256')}")
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    fact("x-amz-checksum-sha256 wrong", error(lambda: s3.put_object(Bucket=BUCKET, Key=PREFIX + "sum-bad.txt", Body=b"checked", ChecksumSHA256=bad)))
    fact("  object after the wrong one", error(lambda: s3.head_object(Bucket=BUCKET, Key=PREFIX + "sum-bad.txt")))
    r = s3.head_object(Bucket=BUCKET, Key=PREFIX + "sum.txt", ChecksumMode="ENABLED")
    fact("HEAD ChecksumMode=ENABLED returns sha256", r.get("ChecksumSHA256"))
    badmd5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    crc = base64.b64encode((0).to_bytes(4, "big")).decode()
    fact("x-amz-checksum-crc32 wrong", error(lambda: s3.put_object(Bucket=BUCKET, Key=PREFIX + "crc-bad.txt", Body=b"checked", ChecksumCRC32=crc)))
    fact("Content-MD5 wrong", error(lambda: s3.put_object(Bucket=BUCKET, Key=PREFIX + "md5-bad.txt", Body=b"checked", ContentMD5=badmd5)))

    # Multipart.
    mkey = PREFIX + "multi.bin"
    up = s3.create_multipart_upload(Bucket=BUCKET, Key=mkey)["UploadId"]
    small1, small2 = b"a" * 1024, b"b" * 1024
    p1 = s3.upload_part(Bucket=BUCKET, Key=mkey, UploadId=up, PartNumber=1, Body=small1)["ETag"]
    p2 = s3.upload_part(Bucket=BUCKET, Key=mkey, UploadId=up, PartNumber=2, Body=small2)["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]}
    res = error(lambda: s3.complete_multipart_upload(Bucket=BUCKET, Key=mkey, UploadId=up, MultipartUpload=parts))
    fact("multipart: two 1 KiB parts complete", res)
    if res == "ok":
        obj = s3.head_object(Bucket=BUCKET, Key=mkey)
        expect = hashlib.md5(hashlib.md5(small1).digest() + hashlib.md5(small2).digest()).hexdigest() + "-2"
        fact("  multipart ETag", f"{obj['ETag']} (AWS-style md5-of-md5s-N: {obj['ETag'].strip(chr(34)) == expect})")
        fact("  body", s3.get_object(Bucket=BUCKET, Key=mkey)["Body"].read() == small1 + small2)
    else:
        s3.abort_multipart_upload(Bucket=BUCKET, Key=mkey, UploadId=up)
    for label, first in (("one 1 KiB part (the last may be small)", None), ("5 MiB - 1 B + 4 B", 5 * 1024 * 1024 - 1)):
        k = PREFIX + "multi-edge.bin"
        u = s3.create_multipart_upload(Bucket=BUCKET, Key=k)["UploadId"]
        ps = []
        if first:
            ps.append({"PartNumber": 1, "ETag": s3.upload_part(Bucket=BUCKET, Key=k, UploadId=u, PartNumber=1, Body=b"c" * first)["ETag"]})
        n = len(ps) + 1
        ps.append({"PartNumber": n, "ETag": s3.upload_part(Bucket=BUCKET, Key=k, UploadId=u, PartNumber=n, Body=b"d" * 1024)["ETag"]})
        res = error(lambda: s3.complete_multipart_upload(Bucket=BUCKET, Key=k, UploadId=u, MultipartUpload={"Parts": ps}))
        fact(f"multipart: {label} complete", res)
        if res != "ok":
            s3.abort_multipart_upload(Bucket=BUCKET, Key=k, UploadId=u)
    mkey5 = PREFIX + "multi5.bin"
    up = s3.create_multipart_upload(Bucket=BUCKET, Key=mkey5)["UploadId"]
    part_a, part_b = os.urandom(5 * 1024 * 1024), b"tail"
    pa = s3.upload_part(Bucket=BUCKET, Key=mkey5, UploadId=up, PartNumber=1, Body=part_a)["ETag"]
    pb = s3.upload_part(Bucket=BUCKET, Key=mkey5, UploadId=up, PartNumber=2, Body=part_b)["ETag"]
    fact("multipart: 5 MiB + 4 B complete", error(lambda: s3.complete_multipart_upload(
        Bucket=BUCKET, Key=mkey5, UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": pa}, {"PartNumber": 2, "ETag": pb}]})))
    fact("  body", s3.get_object(Bucket=BUCKET, Key=mkey5)["Body"].read() == part_a + part_b)
    etag = s3.head_object(Bucket=BUCKET, Key=mkey5)["ETag"]
    expect = hashlib.md5(hashlib.md5(part_a).digest() + hashlib.md5(part_b).digest()).hexdigest() + "-2"
    fact("  multipart ETag", f"{etag} (AWS-style md5-of-part-md5s-N: {etag.strip(chr(34)) == expect})")
    up = s3.create_multipart_upload(Bucket=BUCKET, Key=mkey5 + ".wrong")["UploadId"]
    pa = s3.upload_part(Bucket=BUCKET, Key=mkey5 + ".wrong", UploadId=up, PartNumber=1, Body=b"x")["ETag"]
    fact("multipart: complete with a wrong part ETag", error(lambda: s3.complete_multipart_upload(
        Bucket=BUCKET, Key=mkey5 + ".wrong", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]})))
    s3.abort_multipart_upload(Bucket=BUCKET, Key=mkey5 + ".wrong", UploadId=up)
    akey = PREFIX + "aborted.bin"
    up = s3.create_multipart_upload(Bucket=BUCKET, Key=akey)["UploadId"]
    s3.upload_part(Bucket=BUCKET, Key=akey, UploadId=up, PartNumber=1, Body=b"z" * 1024)
    listed = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]
    fact("ListMultipartUploads shows an open upload", up in listed)
    fact("ListParts on the open upload", [p["PartNumber"] for p in s3.list_parts(Bucket=BUCKET, Key=akey, UploadId=up).get("Parts", [])])
    fact("abort", error(lambda: s3.abort_multipart_upload(Bucket=BUCKET, Key=akey, UploadId=up)))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])]
    fact("  aborted key in ListObjectsV2", akey in keys)
    fact("  HEAD aborted key", error(lambda: s3.head_object(Bucket=BUCKET, Key=akey)))
    fact("  upload in ListMultipartUploads after abort", up in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])])
    fact("  upload_part after abort", error(lambda: s3.upload_part(Bucket=BUCKET, Key=akey, UploadId=up, PartNumber=2, Body=b"z")))
    fact("  abort again", error(lambda: s3.abort_multipart_upload(Bucket=BUCKET, Key=akey, UploadId=up)))
    fact("ListObjectsV2 under the probe prefix", sorted(k[len(PREFIX):] for k in keys))

    # boto3's managed transfer (multipart above its threshold) and awscli-style listing.
    from boto3.s3.transfer import TransferConfig
    import io
    data = os.urandom(12 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(data), BUCKET, PREFIX + "managed.bin", Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
    out = io.BytesIO()
    s3.download_fileobj(BUCKET, PREFIX + "managed.bin", out)
    fact("upload_fileobj 12 MiB in 5 MiB parts, round trip", f"{out.getvalue() == data}, ETag {s3.head_object(Bucket=BUCKET, Key=PREFIX + 'managed.bin')['ETag']}")

    # The SigV4 payload hash (x-amz-content-sha256) against the body, with curl.
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"s3-probe-{os.getpid()}")
    with open(path, "wb") as f:
        f.write(b"real body")
    other = hashlib.sha256(b"other body").hexdigest()
    fact("signed x-amz-content-sha256 != body's", signed_curl(f"{URL}/{BUCKET}/{PREFIX}sha-other", "-T", path, "-H", f"x-amz-content-sha256: {other}"))
    fact("  stored body", s3.get_object(Bucket=BUCKET, Key=PREFIX + "sha-other")["Body"].read())
    fact("x-amz-content-sha256: UNSIGNED-PAYLOAD", signed_curl(f"{URL}/{BUCKET}/{PREFIX}unsigned", "-T", path, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"))
    os.unlink(path)
    # No x-amz-content-sha256 header at all (AWS requires one): which payload hash did the server sign?
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    for label, payload_hash in (("sha256(body)", hashlib.sha256(b"real body").hexdigest()),
                                ("sha256('')", hashlib.sha256(b"").hexdigest()), ("UNSIGNED-PAYLOAD", "UNSIGNED-PAYLOAD")):
        class Auth(SigV4Auth):
            def payload(self, request):
                return payload_hash
        req = AWSRequest(method="PUT", url=f"{URL}/{BUCKET}/{PREFIX}no-sha", data=b"real body")
        Auth(Credentials(*ADMIN), "s3", REGION).add_auth(req)
        st, _, b = http("PUT", req.url, data=b"real body", headers=dict(req.headers))
        fact(f"no x-amz-content-sha256 header, signed over {label}", f"{st} {code_of(b) if st >= 300 else ''}")

    # Clean up.
    objs = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
    if objs:
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": o["Key"]} for o in objs]})
    fact("DeleteObject on a missing key", error(lambda: s3.delete_object(Bucket=BUCKET, Key=PREFIX + "never")))
    fact("probe prefix empty after cleanup", not s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents"))


if __name__ == "__main__":
    main()
