{#- The bronze lineage columns, typed as in the contract, carried from `relation_alias`. -#}
{% macro lineage_columns(relation_alias) -%}
    {{ as_text(relation_alias ~ '._source_file') }} as _source_file,
    cast({{ relation_alias }}._source_line as bigint) as _source_line,
    cast({{ relation_alias }}._load_id as bigint) as _load_id,
    {{ as_load_timestamp(relation_alias ~ '._loaded_at') }} as _loaded_at,
    cast({{ relation_alias }}._repaired as boolean) as _repaired
{%- endmacro %}

{#-
    The average of a decimal sum over a count, rounded half up (away from zero) to `scale`
    decimals in exact decimal arithmetic. The dividend is widened to 20 decimals first so
    that both engines compute the quotient to the same 20 decimals before rounding: the
    result is exact for any count below 10^15.
-#}
{% macro half_up_average(sum_expression, count_expression, scale=2) -%}
    round(
        cast({{ sum_expression }} as decimal(38, 20))
        / cast({{ count_expression }} as decimal(20, 0)),
        {{ scale }}
    )
{%- endmacro %}
