"""The access policy: rules, patterns, admins, anonymous, and the default."""

import pytest

from registry.auth.policy import Policy, Rule, compile_pattern
from registry.auth.scope import ALL_ACTIONS, Access


def rule(users: list[str], repos: list[str], actions: list[str]) -> Rule:
    return Rule(frozenset(users), tuple(repos), frozenset(actions))


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("team-a/*", "team-a/app", True),
        ("team-a/*", "team-a/app/sub", False),
        ("team-a/*", "team-a", False),
        ("team-a/**", "team-a/app/sub", True),
        ("*", "app", True),
        ("*", "a/b", False),
        ("**", "a/b/c", True),
        ("app-?", "app-1", True),
        ("app-?", "app-/", False),
        ("a.b", "axb", False),
        ("exact/name", "exact/name", True),
    ],
)
def test_patterns(pattern: str, name: str, matches: bool) -> None:
    assert (compile_pattern(pattern).fullmatch(name) is not None) is matches


def test_default_policy_everything_for_users_nothing_for_anonymous() -> None:
    policy = Policy()
    assert policy.repository_actions("alice", "any/repo") == ALL_ACTIONS
    assert policy.repository_actions(None, "any/repo") == frozenset()
    assert policy.may_list_catalog("alice")
    assert not policy.may_list_catalog(None)


def test_rules_union_admins_anonymous_and_any_user() -> None:
    policy = Policy(
        rules=(
            rule(["alice"], ["team-a/**"], ["pull", "push"]),
            rule(["alice"], ["team-a/app"], ["delete"]),
            rule(["*"], ["shared/*"], ["pull"]),
            rule(["anonymous"], ["public/*"], ["pull"]),
            rule(["bob"], ["bob/*"], ["*"]),
        ),
        admins=frozenset({"root"}),
    )
    assert policy.repository_actions("alice", "team-a/app") == ALL_ACTIONS
    assert policy.repository_actions("alice", "team-a/x/y") == {"pull", "push"}
    assert policy.repository_actions("alice", "shared/lib") == {"pull"}
    assert policy.repository_actions("carol", "shared/lib") == {"pull"}
    assert policy.repository_actions("carol", "team-a/app") == frozenset()
    assert policy.repository_actions(None, "public/x") == {"pull"}
    assert policy.repository_actions(None, "shared/lib") == frozenset()  # "*" is not anonymous
    assert policy.repository_actions("bob", "bob/x") == ALL_ACTIONS
    assert policy.repository_actions("root", "anything/at/all") == ALL_ACTIONS
    assert policy.may_list_catalog(None)


def test_grant_is_the_intersection() -> None:
    policy = Policy(rules=(rule(["u"], ["r"], ["pull"]),))
    requested = [
        Access("repository", "r", frozenset({"pull", "push"})),
        Access("repository", "other", frozenset({"pull"})),
        Access("registry", "catalog", frozenset({"*"})),
        Access("unknown", "x", frozenset({"pull"})),
    ]
    assert policy.grant("u", requested) == [
        Access("repository", "r", frozenset({"pull"})),
        Access("registry", "catalog", frozenset({"*"})),
    ]
    assert policy.grant(None, requested) == []


def test_wildcard_request_gets_everything_allowed() -> None:
    policy = Policy(rules=(rule(["u"], ["r"], ["pull", "delete"]),))
    assert policy.grant("u", [Access("repository", "r", frozenset({"*"}))]) == [
        Access("repository", "r", frozenset({"pull", "delete"}))
    ]
