{#-
    Ids of `relation` (a bronze source) whose rows were loaded after `cutoff`, plus, when
    `parent` is given, the ids whose rows (any version) reference a `parent_key` value that
    was loaded after `cutoff` (a late condominium makes its properties valid). The loaders
    keep a BRIN index on `_loaded_at`, so on PostgreSQL this reads only the new loads.
-#}
{% macro ids_loaded_since(
    relation, id_column, cutoff, parent=none, parent_key=none, include_current=true
) -%}
    select changed.{{ id_column }}
    from {{ relation }} as changed
    where changed._loaded_at > {{ cutoff }}
    {%- if parent is not none %}
    union
    select referencing.{{ id_column }}
    from {{ relation }} as referencing
    where referencing.{{ parent_key }} in (
        select parents.{{ parent_key }}
        from {{ parent }} as parents
        where parents._loaded_at > {{ cutoff }}
    )
    {%- endif %}
    {%- if include_current %}
    {{- current_ids_when_reprocessing(id_column, cutoff) }}
    {%- endif %}
{%- endmacro %}

{#-
    When an incremental run reprocesses everything (the cutoff is the epoch, e.g. after a
    forced reload removed bronze rows), the ids already in the model are candidates too:
    an id whose bronze rows are all gone must leave the model, and only a candidate's old
    row is replaced.
-#}
{% macro current_ids_when_reprocessing(id_column, cutoff) -%}
    {%- if cutoff | trim == epoch_timestamp() | trim %}
    union
    select current_rows.{{ id_column }}
    from {{ this }} as current_rows
    {%- endif %}
{%- endmacro %}

{#-
    Whether any of `relations` (bronze sources) holds rows loaded after `cutoff`: one cheap
    query at compile time, so that a model can leave an expensive part of its candidate
    search out of the SQL when nothing it depends on was loaded (true when not executing,
    so the SQL shown by `dbt compile` without a database is the complete one).
-#}
{% macro rows_loaded_since(relations, cutoff) -%}
    {%- if not execute or var('sqlfluff_lint', false) -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set query -%}
        select count(*) as loaded from (
            {%- for relation in relations %}
            select 1 as one from {{ relation }} where _loaded_at > {{ cutoff }}
            {%- if not loop.last %}
            union all
            {%- endif %}
            {%- endfor %}
        ) as loaded_rows
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] | int > 0) }}
{%- endmacro %}
