"""Schemathesis hooks for test/integration/schemathesis.test.ts: a check that a request answered with a 4xx
changed nothing.

Before every writing request (POST, PUT, PATCH, DELETE) the hook reads what a write could change: every job's
definition (name, version, disabled: the version moves on every stored change), and whether the scheduler is
paused. After a 4xx it reads them again; any difference fails the case. The stack's scheduler and agents
change counters, `next` and executions on their own, so those are not compared. Schemathesis must run with
one worker (`-w 1`) so that no other case writes in between.

After a successful POST /v1/pause the hook resumes the scheduler, or every later write would be a 503.
"""

import json
import os
import urllib.request

import schemathesis

BASE = os.environ["CRONPLANE_URL"].rstrip("/")
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_before = {}


def _get(path):
    with urllib.request.urlopen(BASE + path, timeout=20) as response:
        return json.loads(response.read())


def _state():
    jobs = _get("/v1/jobs")
    return {
        "jobs": sorted([j["name"], j["version"], j["disabled"]] for j in jobs),
        "paused": _get("/v1/pause")["paused"],
    }


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.method.upper() in WRITES:
        _before[id(case)] = _state()


@schemathesis.hook
def after_call(context, case, response):
    # A pause refuses every job write (503) for the rest of the run: resume at once, so that the cases
    # after it reach the code that writes.
    if case.method.upper() == "POST" and case.path == "/v1/pause" and response.status_code == 200:
        request = urllib.request.Request(BASE + "/v1/unpause", method="POST")
        with urllib.request.urlopen(request, timeout=20):
            pass


@schemathesis.check
def no_state_change_on_4xx(ctx, response, case):
    before = _before.pop(id(case), None)
    if before is None or not 400 <= response.status_code < 500:
        return None
    after = _state()
    if after != before:
        changed = {
            key: {"before": before[key], "after": after[key]} for key in before if before[key] != after[key]
        }
        raise AssertionError(
            f"{case.method} {case.path} answered {response.status_code} and changed state: "
            + json.dumps(changed)[:2000]
        )
    return True
