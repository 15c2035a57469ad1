"""The scripts beside this file drive moto's SQS model in-process: `apply("patched")` loads
local/moto-server.py's patches first (as the local stack runs moto), `apply("unpatched")` leaves moto as
released."""

import importlib.util
import pathlib


def apply(mode):
    if mode == "patched":
        path = pathlib.Path(__file__).resolve().parents[3] / "local" / "moto-server.py"
        spec = importlib.util.spec_from_file_location("moto_server", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
