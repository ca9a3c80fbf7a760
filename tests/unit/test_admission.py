"""Which nodes a connection may speak for: patterns of its user and key, and new nodes."""

from __future__ import annotations

from backend.forward.admission import Admission, KnownNodes, NodeAccess


def test_a_connection_brings_at_most_its_budget_of_new_nodes() -> None:
    known = KnownNodes(["payment-01"])
    access = NodeAccess(known, max_new_nodes=3)
    refused = [access.refusal(f"ghost-{n}") for n in range(20_000)]
    assert refused[:3] == [None, None, None]
    assert all(reason and "--max-new-nodes" in reason for reason in refused[3:])
    assert access.refusal("payment-01") is None  # known before: not new
    assert access.refusal("ghost-1") is None  # admitted once: stays admitted


def test_nodes_another_connection_brought_are_known_to_the_next() -> None:
    known = KnownNodes()
    NodeAccess(known, max_new_nodes=2).refusal("order-01")
    later = NodeAccess(known, max_new_nodes=0)
    assert later.refusal("order-01") is None
    assert later.refusal("order-02") is not None


def test_a_user_speaks_only_for_its_nodes_and_the_key_limits_everyone() -> None:
    access = NodeAccess(
        KnownNodes(),
        patterns=[(("payment-*", "refund-0?"), "user 'payments'"), (("*-0*",), "the shared key")],
    )
    assert access.refusal("payment-01") is None
    assert access.refusal("refund-07") is None
    reason = access.refusal("order-01")
    assert (
        reason == "user 'payments' may not send for node 'order-01' (allowed: payment-*, refund-0?)"
    )
    assert access.refusal("payment-x") == (
        "the shared key may not send for node 'payment-x' (allowed: *-0*)"
    )


def test_no_patterns_allow_every_node() -> None:
    access = NodeAccess(KnownNodes(), patterns=[((), "user 'ops'")])
    assert access.refusal("anything") is None


def test_the_known_set_is_bounded() -> None:
    known = KnownNodes(limit=2)
    for node in ("a", "b", "c"):
        known.add(node)
    assert len(known) == 2 and "c" not in known


def test_each_connection_gets_the_keys_patterns_and_its_users() -> None:
    admission = Admission(
        KnownNodes(), key_nodes=("*-01",), user_nodes={"payments": ("payment-*",)}
    )
    assert admission.connection("127.0.0.1:1", "payments").refusal("payment-01") is None
    assert admission.connection("127.0.0.1:2", "payments").refusal("order-01") is not None
    assert admission.connection("127.0.0.1:3").refusal("order-01") is None
    assert admission.connection("127.0.0.1:4").refusal("order-02") == (
        "the shared key may not send for node 'order-02' (allowed: *-01)"
    )
