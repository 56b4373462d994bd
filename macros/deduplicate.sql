{#-
    The latest version of every id in a bronze relation: the row of the latest load
    (`_load_id`), and within one load the last physical line (`_source_line`).
    Returns every column of the relation.

    PostgreSQL gets `distinct on`: the same sort as the window, and the planner knows it
    yields one row per distinct id. With a `row_number() = 1` filter it guessed 0.5% of the
    rows, and then joined 10M deduplicated transactions to silver by index lookups instead
    of hashing (a full refresh 50% slower). Spark has no `distinct on`; it gets the window.
-#}
{% macro latest_version_by_id(relation, id_column, where=none) -%}
    {{ return(adapter.dispatch('latest_version_by_id', 'condomanage')(relation, id_column, where)) }}
{%- endmacro %}

{% macro default__latest_version_by_id(relation, id_column, where=none) -%}
    select distinct on (bronze_rows.{{ id_column }}) bronze_rows.*
    from {{ relation }} as bronze_rows
    {%- if where %}
    where {{ where }}
    {%- endif %}
    order by
        bronze_rows.{{ id_column }},
        bronze_rows._load_id desc,
        bronze_rows._source_line desc
{%- endmacro %}

{% macro spark__latest_version_by_id(relation, id_column, where=none) -%}
    select versions.*
    from (
        select
            bronze_rows.*,
            row_number() over (
                partition by bronze_rows.{{ id_column }}
                order by bronze_rows._load_id desc, bronze_rows._source_line desc
            ) as version_rank
        from {{ relation }} as bronze_rows
        {%- if where %}
        where {{ where }}
        {%- endif %}
    ) as versions
    where versions.version_rank = 1
{%- endmacro %}
