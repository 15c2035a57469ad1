"""Drives Dkron's own Python client, pydkron 0.2.4, through every operation it offers against a Cronplane API.

Prints one JSON object: what each call returned or raised. test/integration/dkron-clients.test.ts asserts on
it. Usage: dkron_clients.py HOST:PORT
"""
import json
import sys
import time

from pydkron.client import DkronClient, DkronJobNotFound, DkronClientException
from pydkron.job import DkronJob

host = sys.argv[1]
client = DkronClient([host])
report = {}


def attempt(name, fn):
    try:
        report[name] = {"ok": fn()}
    except Exception as error:  # the report says which exception a call raised
        report[name] = {"raised": type(error).__name__, "message": str(error)}


attempt("status", lambda: sorted(client.status().keys()))

# pydkron's README example: an old-format job (top-level command, no executor).
job = DkronJob(client, name="pyd-job", schedule="@every 1h", command="echo from-pydkron", shell=True,
               owner="ops", owner_email="ops@example.com", disabled=False, tags={}, retries=0,
               concurrency="allow", processors={})
attempt("save_job", lambda: {k: v for k, v in job.save().items() if k in ("name", "executor", "executor_config")})
attempt("create_job", lambda: client.create_job({
    "name": "pyd-child", "parent_job": "pyd-job", "executor": "shell",
    "executor_config": {"command": "echo child"},
}).name)
attempt("jobs", lambda: sorted(j.name for j in client.jobs() if j["name"].startswith("pyd-")))
attempt("get_job", lambda: (lambda j: {"name": j.name, "schedule": j.schedule, "id": j["id"]})(client.get_job("pyd-job")))
attempt("get_job_missing", lambda: client.get_job("pyd-missing"))
attempt("run_job", lambda: client.get_job("pyd-job").run()["name"])


def executions():
    deadline = time.time() + 30
    while time.time() < deadline:
        runs = client.get_job("pyd-job").executions()
        done = [r for r in runs if r.get("finished_at", "").startswith("0001") is False and r.get("success")]
        if done:
            return {"count": len(runs), "output": done[0]["output"], "group_is_int": isinstance(done[0]["group"], int)}
        time.sleep(0.5)
    return {"count": 0}


attempt("executions", executions)
attempt("executions_missing", lambda: client.get_executions("pyd-missing"))
attempt("toggle", lambda: client.toggle("pyd-job").disabled)
attempt("toggle_back", lambda: client.toggle("pyd-job").disabled)
attempt("delete_parent_with_child", lambda: client.delete_job("pyd-job"))
attempt("delete_child", lambda: client.delete_job("pyd-child")["name"])
attempt("delete_job", lambda: client.get_job("pyd-job").delete()["name"])
attempt("delete_missing", lambda: client.delete_job("pyd-job"))
attempt("save_invalid", lambda: client.create_job({"name": "Bad Name", "schedule": "@every 1h", "command": "true"}))

print(json.dumps(report))
