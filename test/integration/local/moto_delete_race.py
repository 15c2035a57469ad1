"""Sends and deletes on one moto SQS queue from several threads at once; prints how many sent messages
are missing afterwards. `patched`: with local/moto-server.py's patches applied (as the local stack runs
moto), `unpatched`: moto as released. Used by moto-server.test.ts."""

import json
import sys
import threading

import moto_patches

sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race needs a switch mid-delete
moto_patches.apply(sys.argv[1])

from moto.sqs.models import sqs_backends  # noqa: E402

backend = sqs_backends["123456789012"]["us-east-1"]
backend.create_queue("race")
N = 400
for i in range(N):
    backend.send_message("race", f"old-{i}")
handles = []
while len(handles) < N:
    handles += [m.receipt_handle for m in backend.receive_message("race", 10, 0, 600)]


def delete(part):
    for h in part:
        backend.delete_message("race", h)


def send(w):
    for i in range(w, N, 4):
        backend.send_message("race", f"new-{i}")


threads = [threading.Thread(target=delete, args=(handles[w::4],)) for w in range(4)]
threads += [threading.Thread(target=send, args=(w,)) for w in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
bodies = {m.body for m in backend.get_queue("race")._messages}
print(json.dumps({"missing": sum(f"new-{i}" not in bodies for i in range(N)), "left": len(bodies)}))
