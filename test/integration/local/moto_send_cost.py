"""Sends to moto SQS queues through its model and prints what a send costs and what it still does.
`patched`: with local/moto-server.py's patches applied (as the local stack runs moto), `unpatched`: moto
as released. Used by moto-server.test.ts.

- counter_reads: how often the queue's approximate counters (each a walk over every queued message) were
  computed during 200 sends to a standard queue — moto as released computes them once per send, which
  makes filling a queue quadratic;
- fifo_kept: messages left after sending the same body twice to a FIFO queue with content-based
  deduplication, and twice with the same explicit deduplication id (still 2: the dedupe still happens);
- fifo_refused: a send without MessageGroupId to a FIFO queue is still refused;
- counters: what the attributes read afterwards report (they are still computed when asked for).
"""

import json
import sys

import moto_patches

moto_patches.apply(sys.argv[1])

import moto.sqs.models as sqs_models  # noqa: E402
from moto.sqs.models import sqs_backends  # noqa: E402

reads = {"n": 0}
_count = sqs_models.Queue.approximate_number_of_messages


def counted(self):
    reads["n"] += 1
    return _count.fget(self)


sqs_models.Queue.approximate_number_of_messages = property(counted)

backend = sqs_backends["123456789012"]["us-east-1"]
backend.create_queue("plain")
for i in range(200):
    backend.send_message("plain", f"m-{i}", delay_seconds=900 if i % 2 else 0)
counter_reads = reads["n"]

backend.create_queue("dedupe.fifo", FifoQueue="true", ContentBasedDeduplication="true")
for _ in range(2):
    backend.send_message("dedupe.fifo", "same", group_id="g")
    backend.send_message("dedupe.fifo", "other-body", group_id="g", deduplication_id="d1")
    backend.send_message("dedupe.fifo", "another-body", group_id="g", deduplication_id="d1")
fifo_kept = len(backend.get_queue("dedupe.fifo")._messages)

backend.create_queue("strict.fifo", FifoQueue="true")
try:
    backend.send_message("strict.fifo", "no group")
    fifo_refused = False
except Exception:  # MissingParameter
    fifo_refused = True

attributes = backend.get_queue("plain").attributes
print(
    json.dumps(
        {
            "counter_reads": counter_reads,
            "fifo_kept": fifo_kept,
            "fifo_refused": fifo_refused,
            "counters": {
                "visible": attributes["ApproximateNumberOfMessages"],
                "delayed": attributes["ApproximateNumberOfMessagesDelayed"],
                "plain_dedupe": attributes.get("ContentBasedDeduplication"),
                "fifo_dedupe": backend.get_queue("dedupe.fifo").attributes["ContentBasedDeduplication"],
            },
        }
    )
)
