"""Sends batches of ten delayed messages to one moto SQS queue; prints how many batches had messages stamped
with different times (sent or due). `patched`: with local/moto-server.py's patches applied (as the local stack
runs moto), `unpatched`: moto as released. Used by moto-server.test.ts."""

import json
import sys

import moto_patches

moto_patches.apply(sys.argv[1])

from moto.sqs.models import sqs_backends  # noqa: E402

backend = sqs_backends["123456789012"]["us-east-1"]
backend.create_queue("batches")
BATCHES = 50
spread = 0
for b in range(BATCHES):
    entries = {
        str(i): {"Id": f"m{i}", "MessageBody": f"{b}.{i}" * 50, "DelaySeconds": 5, "MessageAttributes": {}}
        for i in range(10)
    }
    sent, _ = backend.send_message_batch("batches", entries)
    if len({m.delayed_until for m in sent}) > 1:
        spread += 1
print(json.dumps({"batches": BATCHES, "spread": spread}))
