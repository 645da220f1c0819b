-- staking_concentration: per validator, its stake and its number of delegators (delegators with stake > 0)
-- after the last change in each sampling bucket of $step blocks from $from_block (bucket -1: before the
-- window), up to $to_block (exclusive). Stake = every Delegate minus every Undelegate (stake leaves at
-- undelegation; Withdraw only pays out), summed exactly as BIGNUM.
-- Relation: staking_events (decoded from logs by trace_core.decode.staking; amount is exact decimal text).
WITH moves AS (
    SELECT
        validator_id,
        delegator,
        block_number,
        CASE WHEN event = 'Delegate' THEN CAST(amount AS BIGNUM) ELSE -CAST(amount AS BIGNUM) END AS delta
    FROM staking_events
    WHERE event IN ('Delegate', 'Undelegate') AND block_number < $to_block
),
pair_blocks AS (
    SELECT validator_id, delegator, block_number, SUM(delta) AS delta
    FROM moves
    GROUP BY validator_id, delegator, block_number
),
pair_running AS (
    SELECT
        validator_id, delegator, block_number, delta,
        SUM(delta) OVER (
            PARTITION BY validator_id, delegator ORDER BY block_number
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS stake
    FROM pair_blocks
),
pair_changes AS (
    SELECT
        validator_id, block_number, delta,
        CASE WHEN stake > CAST(0 AS BIGNUM) THEN 1 ELSE 0 END
        - CASE
            WHEN LAG(stake) OVER (PARTITION BY validator_id, delegator ORDER BY block_number) > CAST(0 AS BIGNUM)
            THEN 1 ELSE 0
          END AS delegators_delta
    FROM pair_running
),
validator_blocks AS (
    SELECT validator_id, block_number, SUM(delta) AS delta, SUM(delegators_delta) AS delegators_delta
    FROM pair_changes
    GROUP BY validator_id, block_number
),
validator_running AS (
    SELECT
        validator_id,
        CAST(block_number AS BIGINT) AS block_number,
        SUM(delta) OVER (
            PARTITION BY validator_id ORDER BY block_number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS stake,
        SUM(delegators_delta) OVER (
            PARTITION BY validator_id ORDER BY block_number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS delegators
    FROM validator_blocks
),
bucketed AS (
    SELECT
        validator_id, block_number, stake, delegators,
        CASE WHEN block_number < $from_block THEN -1 ELSE (block_number - $from_block) // $step END AS bucket
    FROM validator_running
)
SELECT
    CAST(validator_id AS BIGINT) AS validator_id,
    bucket,
    block_number,
    CAST(stake AS VARCHAR) AS stake,
    CAST(delegators AS BIGINT) AS delegators
FROM bucketed
QUALIFY ROW_NUMBER() OVER (PARTITION BY validator_id, bucket ORDER BY block_number DESC) = 1
ORDER BY validator_id, bucket
