-- total_supply: the token's total supply after each block where mints or burns happened.
-- Supply = everything minted (Transfer from the zero address) minus everything burned (Transfer to it),
-- summed exactly as BIGNUM from the start of the synced history. Returns the blocks of the window
-- [$from_block, $to_block) where supply moved, plus the last such block before the window (the opening).
-- Relation: erc20_transfers (Cryo; value_string is the exact decimal uint256).
WITH supply_moves AS (
    SELECT
        block_number,
        SUM(CASE WHEN from_address = $zero_address THEN CAST(value_string AS BIGNUM) ELSE CAST(0 AS BIGNUM) END)
        - SUM(CASE WHEN to_address = $zero_address THEN CAST(value_string AS BIGNUM) ELSE CAST(0 AS BIGNUM) END)
            AS delta
    FROM erc20_transfers
    WHERE erc20 = $token
      AND block_number < $to_block
      AND (from_address = $zero_address OR to_address = $zero_address)
    GROUP BY block_number
),
supply AS (
    SELECT
        block_number,
        SUM(delta) OVER (ORDER BY block_number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS total_supply
    FROM supply_moves
)
SELECT CAST(block_number AS BIGINT) AS block_number, CAST(total_supply AS VARCHAR) AS total_supply
FROM supply
WHERE block_number >= $from_block
   OR block_number = (SELECT MAX(block_number) FROM supply_moves WHERE block_number < $from_block)
ORDER BY block_number
