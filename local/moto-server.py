"""moto server, started by local/emulators.ts — moto itself, with two of its SQS hot spots made cheap.

moto's SQS model asks the clock through `unix_time_millis()`, which builds two naive datetimes and
subtracts them, for every message in the queue, several times per request: `Message.visible` and
`Message.delayed` are evaluated over the whole queue to compute its approximate counters, and the
counters are computed whenever `Queue.attributes` is read — three times per received message (the
retention check goes through GetQueueAttributes) and once per sent message. With a thousand messages
queued a ReceiveMessage of 10 took over a second and a SendMessage 17 ms, which is moto's cost, not
ours, and drowned every figure of `npm run bench`.

The patch changes no behaviour: the clock reads the same instant through time.time(), and the
retention check reads the queue's retention period directly instead of all its attributes.
"""

import sys
import time

import moto.sqs.models as sqs_models

_unix_time = sqs_models.unix_time
_unix_time_millis = sqs_models.unix_time_millis


def unix_time(dt=None):
    return time.time() if dt is None else _unix_time(dt)


def unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _unix_time_millis(dt)


def is_message_valid_based_on_retention_period(self, queue_name, message):
    retention_period = int(self.get_queue(queue_name).message_retention_period)
    return retention_period + message.sent_timestamp / 1000 > time.time()


sqs_models.unix_time = unix_time
sqs_models.unix_time_millis = unix_time_millis
sqs_models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
