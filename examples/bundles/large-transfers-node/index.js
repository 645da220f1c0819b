// Flags ERC-20 transfers at or above a threshold: a Trace user function, written as an AWS Lambda handler.
// Event: {"rows": [erc20_transfers rows], "params": {"threshold": "<integer as a decimal string>"}, "context": {}}.
// Token amounts are uint256: they arrive as decimal strings and are compared as BigInt, exactly.
exports.handler = async (event, context) => {
  const threshold = BigInt((event.params || {}).threshold || "0");
  const rows = event.rows || [];
  const flagged = rows
    .filter((row) => BigInt(row.value_string) >= threshold)
    .map((row) => ({ transaction_hash: row.transaction_hash, value: row.value_string }));
  return { flagged, checked: rows.length, request_id: context.awsRequestId };
};
