"""Slugs and actions of the bundled scenarios that the env, rollout and wrapper tests play."""

from __future__ import annotations

COLLECTION = "insurance-claims"
TALK = "delayed-claim-call"  # no tools, 12 turns
DECIDE = "storm-roof-decision"  # one decision tool (claim_status), 10 turns
THEFT = "car-theft-claim"  # two tools, 10 turns
ASK = "Could you tell me your claim number and what happened?"
DECISION = {
    "content": "Based on what you told me, I am approving the claim.",
    "tool_calls": [{"name": "claim_status", "input": {"value": "approve"}}],
}
