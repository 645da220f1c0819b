"""Flags ERC-20 transfers at or above a threshold: a Trace user function, written as an AWS Lambda handler.

Event: {"rows": [erc20_transfers rows], "params": {"threshold": "<integer as a decimal string>"}, "context": {}}.
Token amounts are uint256: they arrive as decimal strings and are compared as Python integers, exactly.
"""


def handler(event, context):
    threshold = int(event.get("params", {}).get("threshold", "0"))
    flagged = [
        {"transaction_hash": row["transaction_hash"], "value": row["value_string"]}
        for row in event.get("rows", [])
        if int(row["value_string"]) >= threshold
    ]
    return {"flagged": flagged, "checked": len(event.get("rows", [])), "request_id": context.aws_request_id}
