-- top_holders: the $n largest holders of $token at the window's last block ($to_block - 1), and each one's
-- balance after the last change in each sampling bucket of $step blocks from $from_block (bucket -1: before
-- the window). Balances are every Transfer in minus every Transfer out, summed exactly as BIGNUM.
-- Ties in balance are broken by address. The zero address (mint source, burn sink) is no holder.
-- Relation: erc20_transfers (Cryo; value_string is the exact decimal uint256).
WITH transfers AS (
    SELECT block_number, from_address, to_address, CAST(value_string AS BIGNUM) AS amount
    FROM erc20_transfers
    WHERE erc20 = $token AND block_number < $to_block
),
moves AS (
    SELECT to_address AS holder, block_number, amount AS delta FROM transfers
    UNION ALL
    SELECT from_address AS holder, block_number, -amount AS delta FROM transfers
),
holder_blocks AS (
    SELECT holder, block_number, SUM(delta) AS delta
    FROM moves
    WHERE holder <> $zero_address
    GROUP BY holder, block_number
),
balances AS (
    SELECT holder, SUM(delta) AS balance FROM holder_blocks GROUP BY holder
),
top_holders AS (
    SELECT holder, ROW_NUMBER() OVER (ORDER BY balance DESC, holder) AS holder_rank
    FROM balances
    WHERE balance > CAST(0 AS BIGNUM)
    ORDER BY balance DESC, holder
    LIMIT $n
),
running AS (
    SELECT
        t.holder_rank,
        h.holder,
        CAST(h.block_number AS BIGINT) AS block_number,
        SUM(h.delta) OVER (
            PARTITION BY h.holder ORDER BY h.block_number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS balance
    FROM holder_blocks AS h
    JOIN top_holders AS t ON t.holder = h.holder
),
bucketed AS (
    SELECT
        holder_rank, holder, block_number, balance,
        CASE WHEN block_number < $from_block THEN -1 ELSE (block_number - $from_block) // $step END AS bucket
    FROM running
)
SELECT holder_rank, holder, bucket, block_number, CAST(balance AS VARCHAR) AS balance
FROM bucketed
QUALIFY ROW_NUMBER() OVER (PARTITION BY holder, bucket ORDER BY block_number DESC) = 1
ORDER BY holder_rank, bucket
