#!/usr/bin/env python3
"""The direct S3 client of bench/run.py's s3 workload: what a user's script does with boto3.

    s3_boto3.py put BUCKET PREFIX DIR TIMING NAME...   s3.upload_file(DIR/NAME, BUCKET, PREFIX/NAME)
    s3_boto3.py get BUCKET PREFIX DIR TIMING NAME...   s3.download_file(BUCKET, PREFIX/NAME, DIR/NAME)

One file after the other in this one process (`for f in files: s3.upload_file(...)`), with
boto3's defaults: the default TransferConfig (multipart over 8 MiB in 8 MiB parts, 10
threads) and botocore's default checksums. The endpoint comes from AWS_ENDPOINT (boto3 does
not read that variable itself), path-style addressing (an IP address has no bucket
subdomains); credentials and region from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_DEFAULT_REGION. Writes {"setup_s", "transfer_s"} as JSON to TIMING: the seconds spent
importing boto3 and making the client, then transferring; the benchmark times the whole
process, as it times ftclient.
"""

import json
import os
import sys
import time

t0 = time.perf_counter()
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402


def main() -> int:
    op, bucket, prefix, local, timing, *names = sys.argv[1:]
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT"],
                      config=Config(s3={"addressing_style": "path"}))
    t1 = time.perf_counter()
    for name in names:
        key = f"{prefix}/{name}" if prefix else name
        path = os.path.join(local, name)
        if op == "put":
            s3.upload_file(path, bucket, key)
        elif op == "get":
            s3.download_file(bucket, key, path)
        else:
            sys.exit(f"unknown operation {op!r}: put or get")
    t2 = time.perf_counter()
    with open(timing, "w") as f:
        json.dump({"setup_s": t1 - t0, "transfer_s": t2 - t1}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
