"""moto server, started by local/emulators.ts — moto itself, with one SQS race fixed, two of its SQS
hot spots made cheap, and its long poll answering a delayed message when its delay ends (a batch's messages
stamped with one time, as SQS does).

The race (moto 5.2.5): `Queue.delete_message` rebuilds the queue's message list and assigns it back
without the lock `Queue.add_message` appends under. moto's server handles requests on threads, so a
SendMessage that lands between the rebuild and the assignment is acknowledged and then gone, and two
deletes that overlap undo one another (the deleted message comes back after its visibility timeout). An
agent handing a launch on (send, then delete its own copy) while another agent deleted a finished one lost
the launch; the bench counted it as never started. Real SQS does neither; delete now holds the lock
(test/integration/local/moto-server.test.ts).

And one fidelity fix: moto's long poll slept a whole second on its queue's condition, which only a send
wakes, so a message whose delay ran out during the wait was answered up to a second late (below,
`wait_for_messages`); SQS answers it at once.

moto's SQS model asks the clock through `unix_time_millis()`, which builds two naive datetimes and
subtracts them, for every message in the queue, several times per request: `Message.visible` and
`Message.delayed` are evaluated over the whole queue to compute its approximate counters, and the
counters are computed whenever `Queue.attributes` is read — three times per received message (the
retention check goes through GetQueueAttributes) and once per sent message. With a thousand messages
queued a ReceiveMessage of 10 took over a second and a SendMessage 17 ms, which is moto's cost, not
ours, and drowned every figure of `npm run bench`.

The send path had the same hot spot, and it made a deep queue quadratic: `send_message` (and, for a FIFO
queue, `add_message`) reads `queue.attributes` only for `ContentBasedDeduplication`, and every such read
walks the whole queue for the approximate counters. Planning 100,000 due launches into one queue
(`npm run bench`, tick_cost) had moto at 92 % of a core for 13 minutes without finishing. While a send
runs, that read now answers the one attribute it asks for from the queue's field.

The speed-ups change no behaviour: the clock reads the same instant through time.time(), the retention
check reads the queue's retention period directly instead of all its attributes, and a send sees the same
`ContentBasedDeduplication` ("true"/"false" on a FIFO queue, absent on a standard one). GetQueueAttributes
still computes every counter (test/integration/local/moto_send_cost.py).
"""

import sys
import threading
import time

import moto.sqs.models as sqs_models

_unix_time = sqs_models.unix_time
_unix_time_millis = sqs_models.unix_time_millis


def unix_time(dt=None):
    return time.time() if dt is None else _unix_time(dt)


# The instant a SendMessageBatch came in, while moto works through its entries (see send_message_batch).
_batch_clock = threading.local()


def unix_time_millis(dt=None):
    if dt is not None:
        return _unix_time_millis(dt)
    frozen = getattr(_batch_clock, "ms", None)
    return frozen if frozen is not None else time.time() * 1000.0


def is_message_valid_based_on_retention_period(self, queue_name, message):
    retention_period = int(self.get_queue(queue_name).message_retention_period)
    return retention_period + message.sent_timestamp / 1000 > time.time()


_delete_message = sqs_models.Queue.delete_message


def delete_message(self, receipt_handle):
    # _messages_lock is a threading.Condition over an RLock: add_message's append waits for this.
    with self._messages_lock:
        _delete_message(self, receipt_handle)


sqs_models.Queue.delete_message = delete_message

# Sends in progress on this thread (moto's server answers requests on threads).
_sending = threading.local()
_attributes = sqs_models.Queue.attributes


def attributes(self):
    if not getattr(_sending, "depth", 0):
        return _attributes.fget(self)
    if not self.fifo_queue:
        return {}
    return {"ContentBasedDeduplication": str(bool(self.content_based_deduplication)).lower()}


_send_message = sqs_models.SQSBackend.send_message


def send_message(self, *args, **kwargs):
    _sending.depth = getattr(_sending, "depth", 0) + 1
    try:
        return _send_message(self, *args, **kwargs)
    finally:
        _sending.depth -= 1


def messages(self):
    # The same test as moto's `Message.visible` and `not Message.delayed`, with the clock read once per walk
    # instead of twice per message.
    now = time.time() * 1000.0
    return [m for m in self._messages if now > m.visible_at and now >= m.delayed_until]


# The shortest a long poll sleeps between two looks at its queue, and the margin past a message's due time.
_MIN_WAIT_S = 0.005
_DUE_MARGIN_S = 0.001


def wait_for_messages(self, timeout):
    # moto's long poll sleeps on the queue's condition, which only a send notifies: a message whose delay or
    # visibility timeout ran out meanwhile was seen only when the one-second wait timed out — up to a second
    # after it became receivable, half a second on average, where SQS answers a long poll at once. Launches
    # are sent with delays and made visible a second before their fire time, so that lateness reached the
    # agents and the worker. This sleeps until the first message in the queue becomes receivable (or a send).
    deadline = time.time() + timeout
    with self._messages_lock:
        while True:
            now = time.time() * 1000.0
            due = None
            for m in self._messages:
                if now > m.visible_at and now >= m.delayed_until:
                    return
                at = max(m.visible_at, m.delayed_until)
                if due is None or at < due:
                    due = at
            left = deadline - time.time()
            if left <= 0:
                return
            wait = left if due is None else min(left, max(_MIN_WAIT_S, (due - now) / 1000.0 + _DUE_MARGIN_S))
            self._messages_lock.wait(wait)


sqs_models.Queue.messages = property(messages)
sqs_models.Queue.wait_for_messages = wait_for_messages
_send_message_batch = sqs_models.SQSBackend.send_message_batch


def send_message_batch(self, *args, **kwargs):
    # SQS stamps a batch's messages with the time of its request: ten launches sent together with one delay
    # come due together, and a long poll hands them over together. moto stamped each as it got to it, a
    # millisecond or more apart on a busy host, so a poll woken when the first came due got one or two.
    _batch_clock.ms = time.time() * 1000.0
    try:
        return _send_message_batch(self, *args, **kwargs)
    finally:
        _batch_clock.ms = None


sqs_models.SQSBackend.send_message_batch = send_message_batch
sqs_models.Queue.attributes = property(attributes)
sqs_models.SQSBackend.send_message = send_message
sqs_models.unix_time = unix_time
sqs_models.unix_time_millis = unix_time_millis
sqs_models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period

# Served by waitress instead of moto's werkzeug server: werkzeug's development server closes the
# connection after every answer (it cannot drain a request body on a kept-alive connection), so every SQS
# request opened a TCP connection. At 6,000 executions a minute that was ~0.25 connects per execution in
# the agent, ~7 % of its CPU in a profile (`connect` and its first write), which real SQS (keep-alive) does
# not cost; moto's threads, one per connection, cost moto as much. waitress keeps connections open and
# answers on a pool of threads: a long poll holds a thread for its wait, so the pool is large.
THREADS = 1024
CONNECTION_LIMIT = 4096


def serve(argv):
    import argparse

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress import serve as waitress_serve

    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    waitress_serve(
        DomainDispatcherApplication(create_backend_app),
        host=args.host,
        port=args.port,
        threads=THREADS,
        connection_limit=CONNECTION_LIMIT,
        # select() stops at 1,024 descriptors; poll() does not.
        asyncore_use_poll=True,
        ident="moto",
        _quiet=True,
    )


if __name__ == "__main__":
    serve(sys.argv[1:])
