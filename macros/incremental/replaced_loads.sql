{#-
    Whether a forced reload (`condo load --force`) replaced a load after `cutoff`. Bronze is
    otherwise append-only, and the incremental models only look for rows added since their
    last build; a replaced load's rows are gone, so the models then reprocess every id,
    which gives what a full refresh gives. Reads the loaders' ledger `ops.loads` when there
    is one (on both targets); bronze written by other tools has none, and then only appends
    are supported (docs/dbt.md).
-#}
{% macro bronze_rows_removed_since(cutoff) -%}
    {%- set ledger = adapter.get_relation(
        database=(none if target.type == 'spark' else target.database),
        schema='ops',
        identifier='loads') -%}
    {%- if ledger is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select count(*) as replaced_loads
        from {{ ledger }} as replaced
        inner join {{ ledger }} as replacing
            on replaced.replaced_by = replacing.load_id
        where
            replaced.status = 'replaced'
            and replacing.finished_at > {{ cutoff }}
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] | int > 0) }}
{%- endmacro %}
