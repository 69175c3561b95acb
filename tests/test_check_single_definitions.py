"""Helpers and limits the checks and the collector share are defined once, in one place."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import checks.legacy_auth_blocked as legacy_auth_blocked
import checks.mfa_enforcement as mfa_enforcement
import checks.mfa_registration as mfa_registration
import checks.support.conditional_access as conditional_access
import checks.support.graph_json as graph_json
import partnerguard.collect as collect
import partnerguard.graph as graph
import partnerguard.graph.errors as graph_errors

MODULES = (conditional_access, legacy_auth_blocked, mfa_enforcement, mfa_registration, collect, graph_errors)


def assigned_names(module: ModuleType) -> set[str]:
    """Names a module binds at its top level (assignments and definitions, not imports)."""
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def test_tenant_controlled_names_are_cut_by_one_limit_defined_in_graph_json() -> None:
    assert "NAME_LIMIT" in assigned_names(graph_json)
    for module in MODULES:
        defined = assigned_names(module)
        assert not defined & {
            "NAME_LIMIT",
            "SUBJECT_NAME_LIMIT",
            "MAX_TENANT_NAME_CHARS",
            "MAX_PRINCIPAL_NAME_CHARS",
        }, module.__name__


def test_no_alias_or_wrapper_duplicates_another_helper() -> None:
    assert "targets_legacy_clients" not in assigned_names(conditional_access)  # is_legacy_block_candidate
    assert "to_unavailable" not in assigned_names(graph_errors)  # GraphError.unavailable()
    assert not hasattr(graph, "to_unavailable")
    assert "policy_gaps" not in assigned_names(mfa_enforcement)  # judge_policy


def test_both_conditional_access_checks_use_the_shared_prologue() -> None:
    for module in (mfa_enforcement, legacy_auth_blocked):
        source = inspect.getsource(module.execute)
        assert "tenant_wide_outcome(" in source
        assert "security_defaults is True" not in source  # not re-implemented
        assert "tenant_finding(" in inspect.getsource(module._tenant_finding)
