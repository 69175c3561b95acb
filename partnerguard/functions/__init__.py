"""Azure Functions blueprints: each module wires one kind of trigger to the pipeline.

Modules here import only `azure.functions` and the light parts of the package at import time;
the Graph and storage stacks are imported inside the functions, so the host indexes the app fast.
"""
