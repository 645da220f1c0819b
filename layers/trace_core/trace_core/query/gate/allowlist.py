"""The reviewed function policy of the SQL gate: which DuckDB functions user SQL may call.

Data in one place, reviewed against DuckDB 2.0.0's ``duckdb_functions()`` (the
rationale is in ``docs/specs/query_sql_gating.md``). Only the two allow sets
decide at run time; ``DENIED`` records why everything else was refused, so
that a test can prove every function DuckDB ships is classified: a DuckDB
upgrade that adds a function fails that test until someone reviews it.

Names are matched case-insensitively on ASCII only (DuckDB folds ASCII case);
a name with any non-ASCII character matches nothing.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from typing import Literal

Kind = Literal["table", "scalar", "pragma"]

# Table functions allowed in FROM: they generate rows from their arguments and read nothing else.
TABLE_FUNCTIONS: frozenset[str] = frozenset(
    {"generate_series", "range", "unnest", "json_each", "json_tree", "repeat", "repeat_row"}
)

# Scalar, aggregate, window and macro functions allowed in expressions: pure functions of
# their arguments (plus clocks and random numbers). Reviewed one by one.
_SCALAR = """
abs acos acosh add age aggregate ago alias any_value apply approx_count_distinct approx_quantile
approx_top_k arbitrary arg_max arg_max_null arg_max_nulls_last arg_min arg_min_null arg_min_nulls_last
argmax argmin array_agg array_aggr array_aggregate array_append array_apply array_cat array_concat
array_contains array_cosine_distance array_cosine_similarity array_cross_product array_distance
array_distinct array_dot_product array_extract array_filter array_grade_up array_has array_has_all
array_has_any array_indexof array_inner_product array_intersect array_length array_negative_dot_product
array_negative_inner_product array_pop_back array_pop_front array_position array_prepend array_push_back
array_push_front array_reduce array_resize array_reverse array_reverse_sort array_select array_slice
array_sort array_to_json array_to_string array_to_string_comma_default array_transform array_unique
array_value array_where array_zip ascii asin asinh assert_true atan atan2 atanh avg bar base64 bin binom
bit_and bit_count bit_length bit_or bit_position bit_xor bitstring bitstring_agg
bitstring_byte_comparable bool_and bool_or can_cast_implicitly cardinality cast_to_type cbrt ceil
ceiling century char_length character_length chr combine combine_aggr concat concat_ws constant_or_null
contains corr cos cosh cot count count_if count_star countif covar_pop covar_samp create_sort_key
cume_dist current_date current_localtime current_localtimestamp damerau_levenshtein date_add date_diff
date_part date_sub date_trunc datediff datepart datesub datetrunc day dayname dayofmonth dayofweek
dayofyear days_in_month decade decimal_average decimal_division decode degrees dense_rank divide
editdist3 element_at encode ends_with entropy enum_code enum_first enum_last enum_range
enum_range_boundary epoch epoch_ms epoch_ns epoch_us equi_width_bins era error even exp factorial favg
fdiv fill filter finalize first first_value flatten floor fmod format format_bytes
formatReadableDecimalSize formatReadableSize from_base64 from_binary from_hex from_json from_json_strict
fsum gamma gcd gen_random_uuid generate_series generate_subscripts geomean geometric_mean get_bit
get_current_time get_current_timestamp get_type grade_up greatest greatest_common_divisor group_concat
hamming hash hex histogram histogram_exact hour icu_sort_key if ilike_escape instr invoke
is_histogram_other_bin isfinite isinf isnan isodow isoyear jaccard jaro_similarity
jaro_winkler_similarity json json_array json_array_length json_contains json_copy_strftime_if_date
json_copy_strftime_if_timestamp json_deep_merge json_exists json_extract json_extract_path
json_extract_path_text json_extract_string json_group_array json_group_object json_group_structure
json_insert json_keys json_merge_patch json_merge_patch_diff json_normalize json_object json_pretty
json_quote json_remove json_replace json_set json_strip_nulls json_structure json_transform
json_transform_strict json_type json_valid json_value julian kahan_sum kurtosis kurtosis_pop lag last
last_day last_value lcase lcm lead least least_common_multiple left left_grapheme len length
length_grapheme levenshtein lgamma like_escape list list_aggr list_aggregate list_any_value list_append
list_apply list_approx_count_distinct list_avg list_bit_and list_bit_or list_bit_xor list_bool_and
list_bool_or list_cat list_concat list_contains list_cosine_distance list_cosine_similarity list_count
list_distance list_distinct list_dot_product list_element list_entropy list_extract list_filter
list_first list_grade_up list_has list_has_all list_has_any list_histogram list_indexof
list_inner_product list_intersect list_kurtosis list_kurtosis_pop list_last list_mad list_max
list_median list_min list_mode list_negative_dot_product list_negative_inner_product list_pack
list_position list_prepend list_product list_reduce list_resize list_reverse list_reverse_sort
list_select list_sem list_skewness list_slice list_sort list_stddev_pop list_stddev_samp list_string_agg
list_sum list_transform list_unique list_value list_var_pop list_var_samp list_where list_zip listagg ln
log log10 log2 lower lpad ltrim lttb mad make_date make_time make_timestamp make_timestamp_ms
make_timestamp_ns make_timestamptz make_type map map_concat map_contains map_contains_entry
map_contains_value map_entries map_extract map_extract_value map_from_entries map_keys map_values max
max_by md5 md5_number md5_number_lower md5_number_upper mean median microsecond millennium millisecond
min min_by minute mismatches mod mode month monthname multiply nanosecond nextafter nfc_normalize
normalized_interval not_ilike_escape not_like_escape now nth_value ntile nullif octet_length ord overlay
parse_formatted_bytes percent_rank pi position pow power prefix printf product quantile quantile_cont
quantile_disc quarter radians random range rank rank_dense reduce regexp_escape regexp_extract
regexp_extract_all regexp_full_match regexp_matches regexp_replace regexp_split_to_array
regexp_split_to_table regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy
regr_syy remap_struct repeat replace replace_type reservoir_quantile reverse right right_grapheme round
round_even roundbankers row row_number row_to_json rpad rtrim second sem set_bit sha1 sha256 sign
signbit sin sinh skewness split split_part sqrt st_asbinary st_asgeojson st_astext st_aswkb st_aswkt
st_crs st_geomfromgeojson st_geomfromwkb st_intersects_extent st_setcrs starts_with stddev stddev_pop
stddev_samp str_split str_split_regex strftime string_agg string_split string_split_regex
string_to_array strip_accents strlen strpos strptime struct_concat struct_contains struct_extract
struct_extract_at struct_has struct_indexof struct_insert struct_keys struct_pack struct_position
struct_update struct_values substr substring substring_grapheme subtract suffix sum sum_no_overflow
sumkahan switch tan tanh time_bucket timetz_byte_comparable timezone timezone_hour timezone_minute
to_aggregate_state to_base to_base64 to_binary to_centuries to_days to_decades to_hex to_hours to_json
to_microseconds to_millennia to_milliseconds to_minutes to_months to_quarters to_seconds to_timestamp
to_weeks to_years today transaction_timestamp translate trim trunc try_strptime typeof ucase unbin unhex
unicode union_extract union_tag union_value unpivot_list upper url_decode url_encode uuid
uuid_extract_timestamp uuid_extract_version uuidv4 uuidv7 var_pop var_samp variance variant_array_length
variant_bytes_to_variant variant_comparator variant_contains variant_exists variant_extract
variant_extract_string variant_group_array variant_group_object variant_keys variant_normalize
variant_to_parquet_variant variant_type variant_typeof vertex_extract wavg week weekday weekofyear
weighted_avg xor year yearweek
"""
SCALAR_FUNCTIONS: frozenset[str] = frozenset(_SCALAR.lower().split())

# Families allowed by pattern: one function per ICU collation, all pure string comparisons.
SCALAR_FAMILIES: tuple[str, ...] = ("collate_*", "icu_collate_*")

# Written as calls but implemented by DuckDB as grammar (absent from duckdb_functions() as scalars):
# unnest() in a select list expands a list into rows; percentile_cont/percentile_disc are the
# ordered-set forms (`percentile_cont(0.5) WITHIN GROUP (ORDER BY x)`) DuckDB binds to quantile_cont/
# quantile_disc; the rest are special forms.
SYNTAX_CALLS: frozenset[str] = frozenset(
    {"coalesce", "ifnull", "try", "grouping", "grouping_id", "columns", "unpack", "unnest", "percentile_cont",
     "percentile_disc"}
)

# Bare names (no parentheses, quoted or not) that DuckDB binds to a session function when no column
# of that name is in scope: `SELECT user` answers the session's user. The gate cannot know the
# columns, so such a bare name is refused; a real column is read qualified (`t.user`).
SESSION_NAMES: frozenset[str] = frozenset(
    {"user", "current_user", "session_user", "current_role", "current_schema", "current_catalog"}
)

# Functions that call another function named by a string argument (at this index): the
# argument must be a string literal naming an allowed function, or the gate refuses.
NAME_ARGUMENTS: dict[str, int] = {
    "aggregate": 1,
    "array_aggr": 1,
    "array_aggregate": 1,
    "list_aggr": 1,
    "list_aggregate": 1,
}


@dataclasses.dataclass(frozen=True)
class Denial:
    """Functions matching ``pattern`` (fnmatch, lower case) of one of ``kinds`` are refused: they ``reason``."""

    pattern: str
    kinds: frozenset[Kind]
    reason: str


def _deny(reason: str, kinds: str, *patterns: str) -> tuple[Denial, ...]:
    kind_set = frozenset(kinds.split())
    return tuple(Denial(p, kind_set, reason) for p in patterns)  # type: ignore[arg-type]


FILES = "reads or lists files or URLs"
CATALOG = "shows the catalog, settings or engine internals (view SQL holds file paths)"
SESSION = "reads or changes session state outside the query"
EXEC = "runs SQL from a string, which would bypass the gate"

DENIED: tuple[Denial, ...] = (
    *_deny("is reachable only through PRAGMA statements, which are refused", "pragma", "*"),
    *_deny(FILES, "table scalar", "read_*", "*scan*", "glob", "parquet_*", "sniff_csv", "python_*"),
    *_deny("reads the process environment", "scalar", "getenv"),
    *_deny("reads settings", "scalar", "current_setting"),
    *_deny(EXEC, "table scalar", "query", "query_table", "json_*_sql", "json_serialize_plan", "sql_auto_complete"),
    *_deny(CATALOG, "table scalar", "duckdb_*", "pragma_*", "pg_*", "*_description", "has_*_privilege",
           "format_type", "format_pg_type", "map_to_pg_oid", "in_search_path", "index_key", "version",
           "get_block_size", "stats", "vector_type", "summary", "icu_calendar_names", "test_*"),
    *_deny(CATALOG, "table", "histogram", "histogram_values"),  # table macros reading a table named by a string
    *_deny(SESSION, "scalar", "getvariable", "nextval", "currval", "setval", "setseed", "current_catalog",
           "current_database", "current_schema", "current_schemas", "current_role", "current_user",
           "session_user", "user", "current_query", "current_query_id", "current_connection_id",
           "current_transaction_id", "txid_current", "inet_*"),
    *_deny("holds a worker without doing work", "scalar", "sleep_ms"),
    *_deny("stores secrets or credentials", "table scalar", "*secret*"),
    *_deny("writes to storage, logs or engine state", "table scalar", "checkpoint", "force_checkpoint",
           "enable_*", "disable_*", "*_log*", "write_log", "*external_resource*"),
    *_deny("parses file paths: no analytics use, and file names stay out of user SQL", "scalar", "parse_path",
           "parse_dirname", "parse_dirpath", "parse_filename", "path_join", "hive_partition_component"),
    *_deny("is a DuckDB internal", "table scalar", "__*"),
)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def normalize(name: str) -> str | None:
    """DuckDB's case folding (ASCII only); ``None`` for a name that cannot match any allowed function."""
    if not name.isascii():
        return None
    return name.lower()


def allowed_in_from(name: str) -> bool:
    """May ``name(...)`` appear as a table function in FROM?"""
    return normalize(name) in TABLE_FUNCTIONS


def allowed_in_expression(name: str) -> bool:
    """May ``name(...)`` appear in an expression (scalar, aggregate, window or macro call)?"""
    folded = normalize(name)
    if folded is None:
        return False
    if folded in SCALAR_FUNCTIONS or folded in SYNTAX_CALLS:
        return True
    return bool(_IDENTIFIER.match(folded)) and any(fnmatch.fnmatchcase(folded, p) for p in SCALAR_FAMILIES)


def denial(name: str, kind: Kind) -> Denial | None:
    """The reviewed reason ``name`` of ``kind`` is refused, or ``None`` if no rule covers it."""
    folded = name.lower()
    if kind != "pragma" and not _IDENTIFIER.match(folded):
        return Denial("<operator>", frozenset({kind}), "is an operator symbol, reachable only as an operator")
    for rule in DENIED:
        if kind in rule.kinds and fnmatch.fnmatchcase(folded, rule.pattern):
            return rule
    return None


def classify(name: str, kind: Kind) -> Literal["allowed"] | Denial | None:
    """How the policy treats a DuckDB function: allowed, denied (with the rule), or unreviewed (``None``)."""
    allowed = allowed_in_from(name) if kind == "table" else kind == "scalar" and allowed_in_expression(name)
    return "allowed" if allowed else denial(name, kind)
