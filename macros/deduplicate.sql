{#-
    The latest version of every id in a bronze relation: the row of the latest load
    (`_load_id`), and within one load the last physical line (`_source_line`).
    Returns every column of the relation.
-#}
{% macro latest_version_by_id(relation, id_column, where=none) -%}
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
